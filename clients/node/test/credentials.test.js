'use strict';
// Vectors computed with clients/python/onecard_client/credentials.py, the specification.
const test = require('node:test');
const assert = require('node:assert/strict');
const { chipCryptogram, deriveCardKey } = require('../lib/credentials');

const MASTER = Buffer.from([...Array(32).keys()]);

test('card key derivation matches the Python specification', () => {
  assert.equal(
    deriveCardKey(MASTER, 'R63935045').toString('hex'),
    '64d31f779125b1f12ce1839e0868a82b7611c5891914bc0f004dd9ff96b9b16d',
  );
});

test('chip cryptogram matches the Python specification', () => {
  const cryptogram = chipCryptogram(deriveCardKey(MASTER, 'R63935045'), {
    cardNo: 'R63935045',
    atc: 7,
    terminalId: 'jx-ts-01-pos-01',
    scene: 3,
    amountFen: 1250,
    tapTimeMs: 1795492800000,
  });
  assert.equal(cryptogram.toString('hex'), '3e73a333de36330a');
});

test('a non-integer field is refused rather than signed', () => {
  assert.throws(() =>
    chipCryptogram(Buffer.alloc(32), {
      cardNo: 'R1',
      atc: 1.5,
      terminalId: 't',
      scene: 3,
      amountFen: 1,
      tapTimeMs: 1,
    }),
  );
});
