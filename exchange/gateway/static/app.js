// The cfx market dashboard: REST for the initial loads, the websocket feed for everything live.
//
// State lives in one object; messages and responses change it and mark parts of the page
// dirty; one animation frame redraws the dirty parts. Nothing here assumes that data is
// present: an exchange with no contracts, no trades or no settlements yet renders as such.

import { LocalBook, FeedError } from "./book.js";
import { candleAt, drawCandles, drawDepth, drawSparkline } from "./charts.js";
import { add, compare, grouped, isDecimal, percent, sign, subtract, toNumber } from "./decimal.js";
import { Feed } from "./feed.js";

const PRODUCTS = {
  H100: "NVIDIA H100 SXM 80GB",
  A100: "NVIDIA A100 SXM 80GB",
};
const INTERVAL_MS = { "1m": 60_000, "1h": 3_600_000, "1d": 86_400_000 };
const LADDER_DEPTH = 10;
const DEPTH_LEVELS = 60;
const TAPE_LENGTH = 80;
const REFRESH_MS = 10_000;

const state = {
  contracts: new Map(), // symbol -> contract object (GET /v1/contracts)
  loaded: false,
  tickers: new Map(), // symbol -> latest ticker message
  product: "all",
  selected: null,
  chosenByUser: false,
  generation: 0, // bumps on every selection; stale responses are dropped
  book: null,
  trades: [], // newest first
  interval: "1m",
  candles: [], // oldest first
  hover: null,
  settlements: [],
  index: {},
  deliveries: [],
  deliveryScope: "all",
  clock: null,
};

const $ = (id) => document.getElementById(id);

/** Create an element: el("td", {class: "num"}, "3.50"). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJSON(path) {
  try {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      console.warn(`GET ${path}: ${response.status}`);
      return null;
    }
    return await response.json();
  } catch (error) {
    console.warn(`GET ${path}:`, error);
    return null;
  }
}

// -- formatting ------------------------------------------------------------------------------
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const two = (n) => String(n).padStart(2, "0");

function parseTime(iso) {
  const ms = Date.parse(iso ?? "");
  return Number.isNaN(ms) ? null : new Date(ms);
}

function fmtDate(iso, withTime = true) {
  const d = parseTime(iso);
  if (!d) return "–";
  const date = `${DAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
  return withTime ? `${date} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}` : date;
}

function fmtClock(iso) {
  const d = parseTime(iso);
  if (!d) return "–";
  return `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
}

function fmtTime(iso) {
  const d = parseTime(iso);
  return d ? `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}` : "–";
}

function kindOf(symbol) {
  if (/-W\d\d$/.test(symbol)) return "week";
  if (/-\d{4}-\d\d-\d\d$/.test(symbol)) return "day";
  return "month";
}

function decimalsOf(contract) {
  const tick = contract?.tick_size;
  if (!isDecimal(tick)) return 2;
  const dot = tick.indexOf(".");
  return dot < 0 ? 0 : tick.length - dot - 1;
}

const price = (text) => (isDecimal(text) ? text : "–");

/** A rate such as "0.2000" as a percentage without trailing zeros: "20%". */
function rate(text) {
  const pct = percent(text, "1");
  return pct === null ? "–" : `${pct.replace(/\.?0+$/, "")}%`;
}

/** A signed change with its direction class: ["+0.05", "up"]. */
function signed(change) {
  if (!isDecimal(change)) return ["–", "muted"];
  const s = sign(change);
  return [s > 0 ? `+${change}` : change, s > 0 ? "up" : s < 0 ? "down" : "muted"];
}

function changeOf(symbol) {
  const ticker = state.tickers.get(symbol);
  const change = ticker?.change_24h;
  const last = ticker?.last;
  if (!isDecimal(change) || !isDecimal(last)) return null;
  return { change, pct: percent(change, subtract(last, change)) };
}

function lastOf(symbol) {
  const ticker = state.tickers.get(symbol);
  return ticker?.last ?? state.contracts.get(symbol)?.last_price ?? null;
}

// -- rendering -------------------------------------------------------------------------------
const dirty = new Set();
let frame = 0;

function schedule(...parts) {
  parts.forEach((part) => dirty.add(part));
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const parts = [...dirty];
  dirty.clear();
  for (const part of parts) {
    try {
      RENDER[part]();
    } catch (error) {
      console.warn(`render ${part}:`, error);
    }
  }
}

const RENDER = {
  markets: renderMarkets,
  summary: renderSummary,
  book: renderBook,
  depth: renderDepth,
  trades: renderTrades,
  candles: renderCandles,
  settlements: renderSettlements,
  index: renderIndex,
  deliveries: renderDeliveries,
  clock: () => {
    $("clock").textContent = fmtClock(state.clock);
  },
};

function renderMarkets() {
  const body = $("contracts");
  const rows = [];
  const shown = [...state.contracts.values()].filter(
    (c) => state.product === "all" || c.product === state.product,
  );
  let group = null;
  for (const contract of shown) {
    if (contract.product !== group) {
      group = contract.product;
      rows.push(
        el(
          "tr",
          { class: "group" },
          el("td", { colspan: 4 }, `${group} · ${PRODUCTS[group] ?? ""}`),
        ),
      );
    }
    const symbol = contract.symbol;
    const change = changeOf(symbol);
    const [changeText, changeClass] = change
      ? [
          change.pct !== null ? `${signed(change.pct)[0]}%` : signed(change.change)[0],
          signed(change.change)[1],
        ]
      : ["–", "muted"];
    const row = el(
      "tr",
      {
        class: `contract${symbol === state.selected ? " selected" : ""}`,
        "data-symbol": symbol,
        tabindex: 0,
        title: `${symbol}: delivery ${fmtDate(contract.delivery_start)} to ${fmtDate(contract.delivery_end)} UTC`,
      },
      el("td", { class: "sym" }, symbol, el("span", { class: "kind" }, kindOf(symbol))),
      el("td", { class: "num last" }, price(lastOf(symbol))),
      el("td", { class: `num change ${changeClass}` }, changeText),
      el(
        "td",
        { class: "status" },
        el("span", { class: `pill ${contract.status}` }, contract.status),
      ),
    );
    rows.push(row);
  }
  if (!rows.length) {
    const text = state.loaded ? "No contracts are listed yet." : "Loading contracts…";
    rows.push(el("tr", { class: "empty" }, el("td", { colspan: 4 }, text)));
  }
  body.replaceChildren(...rows);
}

function stat(label, value, cls = "", title = null) {
  return el(
    "div",
    { class: "stat", title },
    el("span", { class: "k" }, label),
    el("span", { class: `v ${cls}` }, value),
  );
}

function renderSummary() {
  const box = $("summary");
  const contract = state.contracts.get(state.selected);
  if (!contract) {
    const text =
      state.loaded && !state.contracts.size
        ? "No contracts are listed yet. The market opens when the listing calendar lists its first contracts."
        : "Select a contract to see its market.";
    box.replaceChildren(el("div", { class: "empty" }, text));
    return;
  }
  const symbol = contract.symbol;
  const ticker = state.tickers.get(symbol) ?? {};
  const last = lastOf(symbol);
  const change = changeOf(symbol);
  const [changeText, changeClass] = change ? signed(change.change) : ["–", "muted"];
  const settled = state.settlements.length ? state.settlements[state.settlements.length - 1] : null;
  const sinceSettle =
    settled && isDecimal(last) && isDecimal(settled.price) ? subtract(last, settled.price) : null;
  const [settleText, settleClass] = signed(sinceSettle);
  const kind = kindOf(symbol);
  const period = kind === "day" ? "that day" : kind === "week" ? "that ISO week" : "that month";
  box.replaceChildren(
    el(
      "div",
      { class: "title" },
      el("span", { class: "symbol" }, symbol),
      el("span", { class: `last ${changeClass}` }, price(last)),
      el("span", { class: `pill ${contract.status}` }, contract.status),
      contract.mechanism === "batch"
        ? el("span", { class: "pill" }, `batch auction every ${contract.batch_interval_s} s`)
        : null,
    ),
    el(
      "div",
      { class: "describe" },
      `One ${PRODUCTS[contract.product] ?? contract.product} GPU-hour per unit, delivered over ${period}: `,
      `${fmtDate(contract.delivery_start)} to ${fmtDate(contract.delivery_end)} UTC. `,
      `Trading closes ${fmtDate(contract.last_trade_time)} UTC. Prices in USD per GPU-hour.`,
    ),
    el(
      "div",
      { class: "stats" },
      stat(
        "24h change",
        change && change.pct !== null ? `${changeText} (${signed(change.pct)[0]}%)` : changeText,
        changeClass,
      ),
      stat(
        "24h volume",
        isDecimal(ticker.volume_24h) ? `${grouped(ticker.volume_24h)} GPU-h` : "–",
      ),
      stat("Best bid", price(ticker.best_bid), "up"),
      stat("Best ask", price(ticker.best_ask), "down"),
      stat(
        "Last settlement",
        settled ? price(settled.price) : "–",
        "",
        "The latest daily settlement price",
      ),
      stat("Since settlement", settleText, settleClass),
      stat("Tick", price(contract.tick_size)),
      stat("Initial margin", rate(contract.initial_margin_rate)),
      stat(
        "Price band",
        `±${rate(contract.price_band)}`,
        "",
        "Largest distance of an order's price from the reference price",
      ),
    ),
  );
}

function ladderRows(levels, side, widest) {
  return levels.map(([p, qty, total]) =>
    el(
      "div",
      { class: `level ${side === "buy" ? "bid" : "ask"}`, "data-price": p, "data-side": side },
      el("span", { class: "price" }, p),
      el("span", { class: "size" }, grouped(qty)),
      el("span", { class: "total" }, grouped(total)),
      el("i", {
        class: "bar",
        style: `width:${Math.min(100, (toNumber(total) / widest) * 100).toFixed(1)}%`,
      }),
    ),
  );
}

function renderBook() {
  const book = state.book;
  const bids = book ? book.levels("buy", LADDER_DEPTH) : [];
  const asks = book ? book.levels("sell", LADDER_DEPTH) : [];
  const widest = Math.max(
    bids.length ? toNumber(bids[bids.length - 1][2]) : 0,
    asks.length ? toNumber(asks[asks.length - 1][2]) : 0,
    1,
  );
  const waiting = !state.selected
    ? "No contract selected"
    : book && book.synced
      ? null
      : "Loading…";
  $("asks").replaceChildren(
    ...(asks.length
      ? ladderRows(asks, "sell", widest).reverse()
      : [el("div", { class: "empty" }, waiting ?? "No offers")]),
  );
  $("bids").replaceChildren(
    ...(bids.length
      ? ladderRows(bids, "buy", widest)
      : [el("div", { class: "empty" }, waiting ?? "No bids")]),
  );
  const last = state.selected ? lastOf(state.selected) : null;
  const lastTrade = state.trades[0];
  const lastClass = lastTrade ? (lastTrade.taker_side === "buy" ? "up" : "down") : "muted";
  let gap = "";
  if (bids.length && asks.length) {
    const spread = subtract(asks[0][0], bids[0][0]);
    const pct = percent(spread, asks[0][0]);
    gap = `spread ${spread}${pct !== null ? ` (${pct}%)` : ""}`;
  }
  $("spread").replaceChildren(
    el("span", { class: `last ${lastClass}`, title: "Last traded price" }, price(last)),
    el("span", { class: "gap" }, gap),
  );
  $("book-state").textContent =
    book && book.synced ? `sequence ${book.sequence}` : state.selected ? "syncing" : "";
}

function renderDepth() {
  const book = state.book;
  const contract = state.contracts.get(state.selected);
  drawDepth(
    $("depth"),
    book ? book.levels("buy", DEPTH_LEVELS) : [],
    book ? book.levels("sell", DEPTH_LEVELS) : [],
    decimalsOf(contract),
  );
}

function renderTrades() {
  const rows = state.trades.map((t) =>
    el(
      "div",
      {
        class: `trade ${t.taker_side === "sell" ? "sell" : "buy"}${t.fresh ? " fresh" : ""}`,
        "data-trade-id": t.trade_id,
        title: `trade ${t.trade_id}, taker ${t.taker_side}`,
      },
      el("span", { class: "time" }, fmtTime(t.time)),
      el("span", { class: "price" }, price(t.price)),
      el("span", { class: "size" }, grouped(String(t.quantity))),
    ),
  );
  state.trades.forEach((t) => delete t.fresh);
  const text = state.selected ? "No trades yet" : "No contract selected";
  $("trades").replaceChildren(...(rows.length ? rows : [el("div", { class: "empty" }, text)]));
}

let candleLayout = null;

function renderCandles() {
  const contract = state.contracts.get(state.selected);
  const settled = state.settlements.length
    ? state.settlements[state.settlements.length - 1].price
    : null;
  candleLayout = drawCandles($("candles"), state.candles, {
    interval: state.interval,
    decimals: decimalsOf(contract),
    settlement: settled,
    hover: state.hover,
  });
}

function renderSettlements() {
  const rows = [...state.settlements]
    .reverse()
    .map((s) =>
      el(
        "tr",
        {},
        el("td", {}, fmtDate(s.time)),
        el("td", { class: "num" }, price(s.price)),
        el(
          "td",
          {},
          s.final
            ? el(
                "span",
                {
                  class: "pill final",
                  title: "Final settlement price: deliveries are invoiced at it",
                },
                "final",
              )
            : "",
        ),
      ),
    );
  const text = state.selected
    ? "No settlement yet: the first comes at 00:00 UTC."
    : "No contract selected";
  $("settlements").replaceChildren(
    ...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: 3 }, text))]),
  );
}

function renderIndex() {
  const cards = Object.keys(PRODUCTS).map((product) => {
    const index = state.index[product];
    const latest = index?.history?.length ? index.history[index.history.length - 1] : null;
    const canvas = el("canvas", { "aria-label": `${product} index history` });
    const card = el(
      "div",
      { class: "index-card", "data-product": product },
      el(
        "div",
        { class: "head" },
        el("span", { class: "product" }, product),
        el("span", { class: "price" }, index && isDecimal(index.price) ? `$${index.price}` : "–"),
      ),
      el(
        "div",
        { class: "source" },
        latest ? `${fmtDate(latest.time, false)} · from ${latest.contract}` : "No settlement yet",
      ),
      canvas,
    );
    return [card, canvas, (index?.history ?? []).map((h) => toNumber(h.price))];
  });
  $("index").replaceChildren(...cards.map(([card]) => card));
  for (const [, canvas, values] of cards) drawSparkline(canvas, values);
}

function renderDeliveries() {
  const rows = state.deliveries.map((d) =>
    el(
      "tr",
      { "data-delivery-id": d.delivery_id },
      el("td", { class: "num muted" }, d.delivery_id),
      el("td", { class: "sym" }, d.symbol),
      el("td", { class: "num" }, grouped(String(d.gpu_hours))),
      el("td", { class: "num" }, price(d.price)),
      el(
        "td",
        {},
        el("span", { class: `pill ${d.status === "settled" ? "settled-ok" : d.status}` }, d.status),
      ),
    ),
  );
  const text = "No deliveries yet: they are assigned when a contract's trading closes.";
  $("deliveries").replaceChildren(
    ...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: 5 }, text))]),
  );
}

// -- loading ---------------------------------------------------------------------------------
async function loadContracts() {
  const list = await getJSON("/v1/contracts");
  if (!Array.isArray(list)) return;
  state.contracts = new Map(list.filter((c) => c && c.symbol).map((c) => [c.symbol, c]));
  state.loaded = true;
  if (!state.selected || !state.contracts.has(state.selected)) chooseDefault();
  schedule("markets", "summary", "book", "trades", "settlements");
}

function chooseDefault() {
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted && state.contracts.has(wanted)) {
    state.chosenByUser = true;
    select(wanted);
    return;
  }
  const all = [...state.contracts.values()];
  const first = all.find((c) => c.status === "trading") ?? all[0];
  if (first) select(first.symbol);
}

/** Once, at start: if the first choice has no trades, prefer the busiest contract. */
function preferBusiest() {
  if (state.chosenByUser) return;
  state.chosenByUser = true;
  let best = null;
  for (const [symbol, ticker] of state.tickers) {
    const volume = isDecimal(ticker.volume_24h) ? ticker.volume_24h : "0";
    if (sign(volume) > 0 && (!best || compare(volume, best[1]) > 0)) best = [symbol, volume];
  }
  const current = state.tickers.get(state.selected);
  const quiet = !current || !isDecimal(current.volume_24h) || sign(current.volume_24h) === 0;
  if (best && quiet && state.contracts.has(best[0])) select(best[0]);
}

async function loadTrades() {
  const symbol = state.selected;
  const generation = state.generation;
  if (!symbol) return;
  const rows = await getJSON(`/v1/trades/${encodeURIComponent(symbol)}?limit=${TAPE_LENGTH}`);
  if (generation !== state.generation || !Array.isArray(rows)) return;
  mergeTrades(rows, false);
}

function mergeTrades(rows, fresh) {
  const known = new Set(state.trades.map((t) => t.trade_id));
  const added = rows.filter((t) => t && !known.has(t.trade_id));
  if (!added.length) return;
  added.forEach((t) => {
    if (fresh) t.fresh = true;
  });
  state.trades = [...state.trades, ...added]
    .sort((a, b) => b.trade_id - a.trade_id)
    .slice(0, TAPE_LENGTH);
  schedule("trades", "book");
}

async function loadCandles() {
  const symbol = state.selected;
  const generation = state.generation;
  const interval = state.interval;
  if (!symbol) return;
  const rows = await getJSON(
    `/v1/candles/${encodeURIComponent(symbol)}?interval=${interval}&limit=300`,
  );
  if (generation !== state.generation || interval !== state.interval || !Array.isArray(rows))
    return;
  state.candles = rows;
  state.hover = null;
  schedule("candles");
}

function addTradeToCandles(trade) {
  const width = INTERVAL_MS[state.interval];
  const at = parseTime(trade.time);
  if (!at || !isDecimal(trade.price)) return;
  const start = Math.floor(at.getTime() / width) * width;
  const quantity = String(trade.quantity);
  const last = state.candles[state.candles.length - 1];
  const lastStart = last ? (parseTime(last.time)?.getTime() ?? -Infinity) : -Infinity;
  if (last && lastStart === start) {
    if (compare(trade.price, last.high) > 0) last.high = trade.price;
    if (compare(trade.price, last.low) < 0) last.low = trade.price;
    last.close = trade.price;
    last.volume = isDecimal(last.volume) ? add(last.volume, quantity) : quantity;
  } else if (start > lastStart) {
    state.candles.push({
      time: new Date(start).toISOString(),
      open: trade.price,
      high: trade.price,
      low: trade.price,
      close: trade.price,
      volume: quantity,
    });
  }
  schedule("candles");
}

async function loadSettlements() {
  const symbol = state.selected;
  const generation = state.generation;
  if (!symbol) return;
  const rows = await getJSON(`/v1/settlement-prices/${encodeURIComponent(symbol)}`);
  if (generation !== state.generation || !Array.isArray(rows)) return;
  state.settlements = rows;
  schedule("settlements", "summary", "candles");
}

async function loadIndex() {
  const answers = await Promise.all(Object.keys(PRODUCTS).map((p) => getJSON(`/v1/index/${p}`)));
  Object.keys(PRODUCTS).forEach((product, i) => {
    if (answers[i]) state.index[product] = answers[i];
  });
  schedule("index");
}

async function loadDeliveries() {
  const scoped = state.deliveryScope === "selected" && state.selected;
  const query = scoped ? `&symbol=${encodeURIComponent(state.selected)}` : "";
  const scope = state.deliveryScope;
  const generation = state.generation;
  const rows = await getJSON(`/v1/market/deliveries?limit=50${query}`);
  if (!Array.isArray(rows) || scope !== state.deliveryScope) return;
  if (scoped && generation !== state.generation) return;
  state.deliveries = rows;
  schedule("deliveries");
}

async function loadClock() {
  const health = await getJSON("/v1/health");
  if (health?.clock) setClock(health.clock);
}

function setClock(iso) {
  if (parseTime(iso) && (!state.clock || iso > state.clock)) {
    state.clock = iso;
    schedule("clock");
  }
}

// -- selection -------------------------------------------------------------------------------
function select(symbol) {
  if (!state.contracts.has(symbol) || symbol === state.selected) return;
  const previous = state.selected;
  if (previous) feed.unsubscribe([`book:${previous}`, `trades:${previous}`]);
  state.selected = symbol;
  state.generation += 1;
  state.book = new LocalBook(symbol);
  state.trades = [];
  state.candles = [];
  state.settlements = [];
  state.hover = null;
  if (location.hash.slice(1) !== symbol) history.replaceState(null, "", `#${symbol}`);
  feed.subscribe([`book:${symbol}`, `trades:${symbol}`]);
  schedule("markets", "summary", "book", "depth", "trades", "candles", "settlements");
  loadTrades();
  loadCandles();
  loadSettlements();
  if (state.deliveryScope === "selected") loadDeliveries();
}

// -- the feed --------------------------------------------------------------------------------
function onMessage(message) {
  if (message.op === "error") {
    console.warn("feed:", message.error?.code, message.error?.message);
    return;
  }
  if (message.op) return; // acks and pongs
  switch (message.channel) {
    case "book":
      onBook(message);
      break;
    case "trades":
      if (message.symbol === state.selected) {
        mergeTrades([message], true);
        addTradeToCandles(message);
      }
      setClock(message.time);
      break;
    case "ticker":
      onTicker(message);
      break;
    case "heartbeat":
      setClock(message.time);
      break;
    default:
      break;
  }
}

function onBook(message) {
  if (message.symbol !== state.selected || !state.book) return;
  try {
    state.book.apply(message);
  } catch (error) {
    if (!(error instanceof FeedError)) throw error;
    console.warn(`book ${error.code}: ${error.message}; resubscribing`);
    feed.resync(`book:${message.symbol}`);
  }
  schedule("book", "depth");
}

let firstTickers = true;

function onTicker(message) {
  if (!message.symbol) return;
  state.tickers.set(message.symbol, message);
  setClock(message.time);
  if (state.loaded && !state.contracts.has(message.symbol)) loadContracts();
  schedule("markets", message.symbol === state.selected ? "summary" : "markets");
  if (message.symbol === state.selected) schedule("book");
  if (firstTickers) {
    firstTickers = false;
    setTimeout(preferBusiest, 300); // the subscription's first tickers arrive together
  }
}

function wsURL() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/v1/ws`;
}

let opened = false;

const feed = new Feed(wsURL(), {
  onMessage,
  onStatus: (status) => {
    const node = $("connection");
    node.dataset.state = status;
    node.textContent = status;
  },
  onOpen: () => {
    // after a reconnect, the book comes again as a snapshot and the tape may have a hole
    if (opened && state.selected) {
      state.book = new LocalBook(state.selected);
      loadTrades();
      loadCandles();
      loadContracts();
      schedule("book", "depth");
    }
    opened = true;
  },
});

// -- controls --------------------------------------------------------------------------------
function activate(tabs, button) {
  tabs.querySelectorAll("button").forEach((b) => b.classList.toggle("active", b === button));
}

function wire() {
  $("contracts").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-symbol]");
    if (row) {
      state.chosenByUser = true;
      select(row.dataset.symbol);
    }
  });
  $("contracts").addEventListener("keydown", (event) => {
    const row = event.target.closest("tr[data-symbol]");
    if (!row) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      state.chosenByUser = true;
      select(row.dataset.symbol);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const rows = [...$("contracts").querySelectorAll("tr[data-symbol]")];
      const next = rows[rows.indexOf(row) + (event.key === "ArrowDown" ? 1 : -1)];
      if (next) {
        state.chosenByUser = true;
        select(next.dataset.symbol);
        requestAnimationFrame(() =>
          $("contracts").querySelector(`tr[data-symbol="${next.dataset.symbol}"]`)?.focus(),
        );
      }
    }
  });
  $("product-tabs").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-product]");
    if (!button) return;
    state.product = button.dataset.product;
    activate($("product-tabs"), button);
    schedule("markets");
  });
  $("interval-tabs").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-interval]");
    if (!button || button.dataset.interval === state.interval) return;
    state.interval = button.dataset.interval;
    state.candles = [];
    activate($("interval-tabs"), button);
    schedule("candles");
    loadCandles();
  });
  $("delivery-tabs").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-scope]");
    if (!button) return;
    state.deliveryScope = button.dataset.scope;
    activate($("delivery-tabs"), button);
    loadDeliveries();
  });
  const candles = $("candles");
  candles.addEventListener("mousemove", (event) => {
    const rect = candles.getBoundingClientRect();
    const hover = candleAt(candleLayout, event.clientX - rect.left);
    if (hover !== state.hover) {
      state.hover = hover;
      schedule("candles");
    }
  });
  candles.addEventListener("mouseleave", () => {
    state.hover = null;
    schedule("candles");
  });
  window.addEventListener("hashchange", () => {
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (state.contracts.has(wanted)) {
      state.chosenByUser = true;
      select(wanted);
    }
  });
  new ResizeObserver(() => schedule("candles", "depth", "index")).observe(document.body);
}

function refresh() {
  loadContracts();
  loadIndex();
  loadDeliveries();
  loadSettlements();
  loadCandles();
  loadClock();
}

async function main() {
  wire();
  schedule(
    "markets",
    "summary",
    "book",
    "depth",
    "trades",
    "candles",
    "settlements",
    "index",
    "deliveries",
  );
  feed.subscribe(["ticker:*"]);
  feed.connect();
  await Promise.all([loadContracts(), loadClock()]);
  loadIndex();
  loadDeliveries();
  setInterval(refresh, REFRESH_MS);
}

main();
