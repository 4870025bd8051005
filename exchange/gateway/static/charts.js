// Canvas charts drawn by hand: candles with volume, order book depth, index sparklines.
//
// Values arrive as the wire's decimal strings and are converted with toNumber only to
// compute pixel positions; every label that shows a traded price prints the string itself.

import { toNumber } from "./decimal.js";

export const COLORS = {
  grid: "#1c222b",
  axis: "#6b7480",
  text: "#c9d1d9",
  up: "#16c784",
  down: "#ea3943",
  upFill: "rgba(22, 199, 132, 0.18)",
  downFill: "rgba(234, 57, 67, 0.18)",
  accent: "#f0b90b",
  accentFill: "rgba(240, 185, 11, 0.12)",
  settle: "#5b8def",
};
const FONT = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace';

/** Size a canvas to its box at the device's pixel ratio; return its 2D context and size. */
export function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.floor(canvas.clientWidth));
  const height = Math.max(1, Math.floor(canvas.clientHeight));
  if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = FONT;
  return { ctx, width, height };
}

function placeholder(ctx, width, height, text) {
  ctx.fillStyle = COLORS.axis;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, width / 2, height / 2);
}

/** Round steps (1, 2, 5 times a power of ten) covering [lo, hi] with about `count` lines. */
function ticks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0)) return { step: 0, values: [] };
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const values = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) values.push(v);
  return { step, values };
}

function decimalsFor(step, atLeast) {
  const fromStep = step > 0 ? Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) : 0;
  return Math.max(atLeast, Math.min(fromStep, 6));
}

function timeLabel(iso, interval) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const hh = String(date.getUTCHours()).padStart(2, "0");
  const mm = String(date.getUTCMinutes()).padStart(2, "0");
  const day = `${date.getUTCDate()} ${date.toLocaleString("en", { month: "short", timeZone: "UTC" })}`;
  if (interval === "1d") return day;
  if (interval === "1h") return `${day} ${hh}:00`;
  return `${hh}:${mm}`;
}

/**
 * Candles oldest first ({time, open, high, low, close, volume}), newest at the right edge.
 * Options: interval, decimals (of the tick size), settlement (a price string or null),
 * hover (index into candles or null). Returns the layout, for mapping the mouse to a candle.
 */
export function drawCandles(canvas, candles, options) {
  const { ctx, width, height } = prepare(canvas);
  const pad = { left: 8, right: 62, top: 22, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const valid = candles.filter((c) =>
    [c.open, c.high, c.low, c.close].every((v) => Number.isFinite(toNumber(v))),
  );
  if (!valid.length || plotW < 20 || plotH < 20) {
    placeholder(ctx, width, height, "No trades yet: candles appear with the first trade");
    return null;
  }
  const slot = Math.max(5, Math.min(16, plotW / Math.max(valid.length, 40)));
  const visible = valid.slice(-Math.floor(plotW / slot));
  const priceH = plotH * 0.78;
  const volumeTop = pad.top + priceH + 6;
  const volumeH = plotH - priceH - 6;

  let lo = Math.min(...visible.map((c) => toNumber(c.low)));
  let hi = Math.max(...visible.map((c) => toNumber(c.high)));
  const settle = toNumber(options.settlement);
  if (Number.isFinite(settle)) {
    lo = Math.min(lo, settle);
    hi = Math.max(hi, settle);
  }
  const margin = hi > lo ? (hi - lo) * 0.08 : Math.max(hi * 0.01, 0.05);
  lo -= margin;
  hi += margin;
  const y = (v) => pad.top + ((hi - v) / (hi - lo)) * priceH;
  const xOf = (i) => pad.left + plotW - (visible.length - i - 0.5) * slot;

  // grid and price axis
  const grid = ticks(lo, hi, 5);
  const places = decimalsFor(grid.step, options.decimals ?? 2);
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const v of grid.values) {
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath();
    ctx.moveTo(pad.left, Math.round(y(v)) + 0.5);
    ctx.lineTo(pad.left + plotW, Math.round(y(v)) + 0.5);
    ctx.stroke();
    ctx.fillStyle = COLORS.axis;
    ctx.fillText(v.toFixed(places), pad.left + plotW + 6, y(v));
  }

  // volume bars
  const maxVolume = Math.max(...visible.map((c) => toNumber(c.volume) || 0), 1);
  const body = Math.max(1, slot * 0.65);
  visible.forEach((c, i) => {
    const rising = toNumber(c.close) >= toNumber(c.open);
    const vh = ((toNumber(c.volume) || 0) / maxVolume) * volumeH;
    ctx.fillStyle = rising ? COLORS.upFill : COLORS.downFill;
    ctx.fillRect(xOf(i) - body / 2, volumeTop + volumeH - vh, body, vh);
  });

  // candles
  visible.forEach((c, i) => {
    const open = toNumber(c.open);
    const close = toNumber(c.close);
    const color = close >= open ? COLORS.up : COLORS.down;
    const x = Math.round(xOf(i)) + 0.5;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.moveTo(x, y(toNumber(c.high)));
    ctx.lineTo(x, y(toNumber(c.low)));
    ctx.stroke();
    const top = y(Math.max(open, close));
    ctx.fillRect(x - body / 2, top, body, Math.max(1, y(Math.min(open, close)) - top));
  });

  // settlement and last price lines, labelled with the wire's strings
  const label = (price, text, color) => {
    const py = y(toNumber(price));
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = color;
    ctx.beginPath();
    ctx.moveTo(pad.left, Math.round(py) + 0.5);
    ctx.lineTo(pad.left + plotW, Math.round(py) + 0.5);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = color;
    ctx.fillRect(pad.left + plotW + 1, py - 8, pad.right - 2, 16);
    ctx.fillStyle = "#0b0e11";
    ctx.fillText(text, pad.left + plotW + 5, py);
  };
  if (Number.isFinite(settle)) label(options.settlement, options.settlement, COLORS.settle);
  const last = visible[visible.length - 1];
  label(
    last.close,
    last.close,
    toNumber(last.close) >= toNumber(last.open) ? COLORS.up : COLORS.down,
  );

  // time axis
  ctx.fillStyle = COLORS.axis;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const every = Math.max(1, Math.ceil(80 / slot));
  for (let i = visible.length - 1; i >= 0; i -= every) {
    ctx.fillText(timeLabel(visible[i].time, options.interval), xOf(i), height - pad.bottom + 6);
  }

  // the legend: the candle under the mouse, else the newest
  const shown = visible[options.hover ?? visible.length - 1] ?? last;
  const rising = toNumber(shown.close) >= toNumber(shown.open);
  const parts = [
    [timeLabel(shown.time, options.interval === "1d" ? "1h" : options.interval), COLORS.axis],
    [`O ${shown.open}`, COLORS.text],
    [`H ${shown.high}`, COLORS.text],
    [`L ${shown.low}`, COLORS.text],
    [`C ${shown.close}`, rising ? COLORS.up : COLORS.down],
    [`Vol ${shown.volume}`, COLORS.axis],
  ];
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  let lx = pad.left + 2;
  for (const [text, color] of parts) {
    ctx.fillStyle = color;
    ctx.fillText(text, lx, 10);
    lx += ctx.measureText(text).width + 12;
  }
  if (options.hover != null && visible[options.hover]) {
    ctx.strokeStyle = "rgba(201, 209, 217, 0.25)";
    ctx.beginPath();
    ctx.moveTo(Math.round(xOf(options.hover)) + 0.5, pad.top);
    ctx.lineTo(Math.round(xOf(options.hover)) + 0.5, pad.top + plotH);
    ctx.stroke();
  }
  return { left: pad.left, plotW, slot, count: visible.length };
}

/** Which visible candle is under the mouse at x, given drawCandles' layout. */
export function candleAt(layout, x) {
  if (!layout) return null;
  const fromRight = (layout.left + layout.plotW - x) / layout.slot;
  const index = layout.count - 1 - Math.floor(fromRight);
  return index >= 0 && index < layout.count ? index : null;
}

/** Cumulative depth: bids and asks as [price, qty, cumulative] best first. */
export function drawDepth(canvas, bids, asks, decimals = 2) {
  const { ctx, width, height } = prepare(canvas);
  const pad = { left: 8, right: 8, top: 10, bottom: 20 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  if (!bids.length && !asks.length) {
    placeholder(ctx, width, height, "The book is empty");
    return;
  }
  const bestBid = bids.length ? toNumber(bids[0][0]) : null;
  const bestAsk = asks.length ? toNumber(asks[0][0]) : null;
  const mid = bestBid !== null && bestAsk !== null ? (bestBid + bestAsk) / 2 : (bestBid ?? bestAsk);
  const far = [...bids, ...asks].map(([p]) => Math.abs(toNumber(p) - mid));
  const half = Math.max(...far, mid * 0.01, 0.01) * 1.1;
  const lo = mid - half;
  const hi = mid + half;
  const deepest = Math.max(
    bids.length ? toNumber(bids[bids.length - 1][2]) : 0,
    asks.length ? toNumber(asks[asks.length - 1][2]) : 0,
    1,
  );
  const x = (p) => pad.left + ((p - lo) / (hi - lo)) * plotW;
  const y = (q) => pad.top + plotH - (q / (deepest * 1.1)) * plotH;
  const base = y(0);

  const side = (levels, edge, line, fill) => {
    if (!levels.length) return;
    ctx.beginPath();
    ctx.moveTo(x(toNumber(levels[0][0])), base);
    let previous = 0;
    for (const [price, , total] of levels) {
      const px = x(toNumber(price));
      ctx.lineTo(px, y(previous));
      ctx.lineTo(px, y(toNumber(total)));
      previous = toNumber(total);
    }
    ctx.lineTo(edge, y(previous));
    ctx.strokeStyle = line;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(edge, base);
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.lineWidth = 1;
  };
  side(bids, pad.left, COLORS.up, COLORS.upFill);
  side(asks, pad.left + plotW, COLORS.down, COLORS.downFill);

  // price axis and the deepest cumulative size
  ctx.fillStyle = COLORS.axis;
  ctx.textBaseline = "top";
  const grid = ticks(lo, hi, Math.max(2, Math.floor(plotW / 90)));
  const places = decimalsFor(grid.step, decimals);
  ctx.textAlign = "center";
  for (const v of grid.values) {
    const at = x(v);
    if (at < pad.left + 18 || at > pad.left + plotW - 18) continue; // no clipped labels
    ctx.fillText(v.toFixed(places), at, height - pad.bottom + 5);
  }
  ctx.strokeStyle = COLORS.grid;
  ctx.beginPath();
  ctx.moveTo(pad.left, Math.round(base) + 0.5);
  ctx.lineTo(pad.left + plotW, Math.round(base) + 0.5);
  ctx.stroke();
  ctx.textAlign = "left";
  ctx.fillText(`${Math.round(deepest)} GPU-h`, pad.left + 2, pad.top);
}

/** A small line of numbers (oldest first), for index histories. */
export function drawSparkline(canvas, values) {
  const { ctx, width, height } = prepare(canvas);
  const points = values.filter(Number.isFinite);
  if (points.length < 2) {
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath();
    ctx.moveTo(0, height / 2 + 0.5);
    ctx.lineTo(width, height / 2 + 0.5);
    ctx.stroke();
    return;
  }
  const lo = Math.min(...points);
  const hi = Math.max(...points);
  const span = hi - lo || 1;
  const x = (i) => 2 + (i / (points.length - 1)) * (width - 4);
  const y = (v) => height - 3 - ((v - lo) / span) * (height - 6);
  ctx.beginPath();
  points.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.strokeStyle = COLORS.accent;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.lineTo(x(points.length - 1), height);
  ctx.lineTo(x(0), height);
  ctx.closePath();
  ctx.fillStyle = COLORS.accentFill;
  ctx.fill();
  ctx.lineWidth = 1;
}
