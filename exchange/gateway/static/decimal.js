// Exact arithmetic on the decimal strings of the wire ("3.50", "-0.05", "24").
//
// Prices, money and quantities stay strings; sums, differences and comparisons go through
// BigInt at a common scale, so nothing is ever rounded. Number() is used only to place
// things on a chart (toNumber).

const DECIMAL = /^-?\d+(\.\d+)?$/;

/** Whether `text` is a decimal string as the feed writes them. */
export function isDecimal(text) {
  return typeof text === "string" && DECIMAL.test(text);
}

function scaleOf(text) {
  const dot = text.indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
}

function toScaled(text, scale) {
  const negative = text.startsWith("-");
  const digits = negative ? text.slice(1) : text;
  const [whole, fraction = ""] = digits.split(".");
  const value = BigInt(whole + fraction.padEnd(scale, "0"));
  return negative ? -value : value;
}

function fromScaled(value, scale) {
  const negative = value < 0n;
  let digits = (negative ? -value : value).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return negative ? `-${digits}` : digits;
}

function common(a, b) {
  const scale = Math.max(scaleOf(a), scaleOf(b));
  return [toScaled(a, scale), toScaled(b, scale), scale];
}

/** -1, 0 or 1 as a is below, equal to or above b. */
export function compare(a, b) {
  const [x, y] = common(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** a + b, exactly, with the larger of the two scales. */
export function add(a, b) {
  const [x, y, scale] = common(a, b);
  return fromScaled(x + y, scale);
}

/** a - b, exactly, with the larger of the two scales. */
export function subtract(a, b) {
  const [x, y, scale] = common(a, b);
  return fromScaled(x - y, scale);
}

/** The sign of a decimal string: -1, 0 or 1. */
export function sign(text) {
  return compare(text, "0");
}

/** change / base as a percentage string with two decimals ("1.43"), or null. */
export function percent(change, base) {
  if (!isDecimal(change) || !isDecimal(base) || sign(base) === 0) return null;
  const [x, y] = common(change, base);
  // hundredths of a percent, rounded half away from zero
  const scaled = (x * 100000n) / y;
  const rounded = scaled >= 0n ? (scaled + 5n) / 10n : (scaled - 5n) / 10n;
  return fromScaled(rounded, 2);
}

/** A number for placing a value on a chart; never for arithmetic on prices. */
export function toNumber(text) {
  return isDecimal(text) ? Number(text) : Number.NaN;
}

/** Group the thousands of an integer part: "12345.5" -> "12,345.5". */
export function grouped(text) {
  if (!isDecimal(text)) return text ?? "";
  const negative = text.startsWith("-");
  const [whole, fraction] = (negative ? text.slice(1) : text).split(".");
  const withCommas = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${withCommas}${fraction !== undefined ? `.${fraction}` : ""}`;
}

/** Sort price strings best first: descending for bids, ascending for asks. */
export function byPrice(descending) {
  return descending ? (a, b) => compare(b, a) : (a, b) => compare(a, b);
}
