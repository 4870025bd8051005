// A local copy of one symbol's order book, kept from the feed (SPEC section 4).
//
// A snapshot replaces the book; each update must carry the next sequence number and is
// applied level by level ("0" removes a level). After every message the CRC32 of the top
// ten levels is compared with the feed's checksum. A gap or a mismatch throws a FeedError:
// the book is then out of sync until the next snapshot, which a resubscription brings.

import { add, byPrice } from "./decimal.js";

export class FeedError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** zlib.crc32 of an ASCII string, as an unsigned integer. */
export function crc32(text) {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export class LocalBook {
  constructor(symbol) {
    this.symbol = symbol;
    this.sequence = null;
    this.synced = false;
    this.bids = new Map(); // price string -> quantity string
    this.asks = new Map();
  }

  /** Apply one book message of this symbol; throws FeedError on a gap or a bad checksum. */
  apply(message) {
    if (message.type === "snapshot") {
      this.bids = new Map((message.bids ?? []).map(([price, qty]) => [price, String(qty)]));
      this.asks = new Map((message.asks ?? []).map(([price, qty]) => [price, String(qty)]));
      this.sequence = message.sequence;
      this.synced = true;
    } else if (message.type === "update") {
      if (!this.synced) return; // waiting for the snapshot a resubscription brings
      if (message.sequence !== this.sequence + 1) {
        this.synced = false;
        throw new FeedError(
          "FEED_GAP",
          `${this.symbol}: update ${message.sequence} after ${this.sequence}`,
        );
      }
      for (const [side, price, qty] of message.changes ?? []) {
        const levels = side === "buy" ? this.bids : this.asks;
        if (String(qty) === "0") levels.delete(price);
        else levels.set(price, String(qty));
      }
      this.sequence = message.sequence;
    } else {
      return;
    }
    if (typeof message.checksum === "number" && message.checksum !== this.checksum()) {
      this.synced = false;
      throw new FeedError(
        "CHECKSUM_MISMATCH",
        `${this.symbol}: checksum differs at sequence ${message.sequence}`,
      );
    }
  }

  /** Levels best first as [price, qty, cumulative qty], at most `depth` of them. */
  levels(side, depth = Infinity) {
    const map = side === "buy" ? this.bids : this.asks;
    const prices = [...map.keys()].sort(byPrice(side === "buy")).slice(0, depth);
    let total = "0";
    return prices.map((price) => {
      const qty = map.get(price);
      total = add(total, qty);
      return [price, qty, total];
    });
  }

  checksum() {
    const top = (side) =>
      this.levels(side, 10)
        .map(([price, qty]) => `${price}:${qty}`)
        .join(",");
    return crc32(`B${top("buy")}A${top("sell")}`);
  }
}
