'use strict';
// Reads the credentials export that `onecard-hub seed` writes beside the database
// (hub.db -> hub.keys/credentials.json): schools, terminals and the simulated cards with
// their keys and chip counters. A real terminal reads the card instead; this export lets
// the example play both the reader and the card. Layout as in
// clients/python/onecard_client/campus.py.

const fs = require('node:fs');
const path = require('node:path');

const CREDENTIALS_FILE = 'credentials.json';

function loadCampus(keysDir) {
  const file = path.join(keysDir, CREDENTIALS_FILE);
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  return {
    terminals: doc.terminals,
    cards: doc.cards.map((c) => ({
      cardNo: c.card_no,
      schoolId: c.school_id,
      cardKey: Buffer.from(c.card_key, 'hex'),
      pin: c.pin,
      atc: c.atc,
      status: c.status ?? 'active',
      enrollment: c.enrollment ?? 'enrolled',
    })),
  };
}

/** Active card of an enrolled student: its taps can be approved. */
function isUsable(card) {
  return card.status === 'active' && card.enrollment === 'enrolled';
}

/** The terminal named, or the first canteen POS of the export. */
function pickTerminal(campus, terminalId) {
  const terminal = terminalId
    ? campus.terminals.find((t) => t.terminal_id === terminalId)
    : campus.terminals.find((t) => t.kind === 'canteen_pos');
  if (!terminal) throw new Error(terminalId ? `no terminal ${terminalId} in the export` : 'no canteen POS in the export');
  return terminal;
}

/** The card named (any status), or the first usable card of the terminal's school. */
function pickCard(campus, cardNo, schoolId) {
  const card = cardNo
    ? campus.cards.find((c) => c.cardNo === cardNo)
    : campus.cards.find((c) => c.schoolId === schoolId && isUsable(c));
  if (!card) throw new Error(cardNo ? `no card ${cardNo} in the export` : `no usable card of ${schoolId} in the export`);
  return card;
}

module.exports = { isUsable, loadCampus, pickCard, pickTerminal };
