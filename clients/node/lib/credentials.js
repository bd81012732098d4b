'use strict';
// The chip-card credential format, ported from clients/python/onecard_client/credentials.py
// (the executable specification; if the two ever disagree, the Python module wins).
//
//   card key   = HMAC-SHA256(issuer master key, "card|" + card_no)
//   cryptogram = HMAC-SHA256(card key, canonical fields)[:8]
//   canonical  = "|".join(card_no, atc, terminal_id, scene, amount_fen, tap_time_ms)
//
// The canonical fields are decimal text joined by "|" and UTF-8 encoded; `scene` is the
// number of onecard.auth.v1.Scene, `amount_fen` integer fen, `tap_time_ms` Unix milliseconds.

const crypto = require('node:crypto');

const CRYPTOGRAM_BYTES = 8;

/** The card's key, derived from the issuer master key (a real chip holds it already). */
function deriveCardKey(issuerMasterKey, cardNo) {
  return crypto.createHmac('sha256', issuerMasterKey).update(`card|${cardNo}`, 'utf8').digest();
}

/** The 8-byte application cryptogram a chip computes over one transaction. */
function chipCryptogram(cardKey, { cardNo, atc, terminalId, scene, amountFen, tapTimeMs }) {
  for (const [name, value] of Object.entries({ atc, scene, amountFen, tapTimeMs })) {
    if (!Number.isSafeInteger(value)) throw new TypeError(`${name} must be an integer`);
  }
  const fields = `${cardNo}|${atc}|${terminalId}|${scene}|${amountFen}|${tapTimeMs}`;
  return crypto.createHmac('sha256', cardKey).update(fields, 'utf8').digest().subarray(0, CRYPTOGRAM_BYTES);
}

module.exports = { CRYPTOGRAM_BYTES, chipCryptogram, deriveCardKey };
