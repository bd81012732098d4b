#!/usr/bin/env node
'use strict';
// OneCard Hub example terminal: reads the hub's clock and performs one chip tap.
//
//   node tap.js --keys DIR --pki DIR [--target 127.0.0.1:50051] [--server-name localhost]
//   node tap.js --keys DIR --plaintext [...]
//
// Exit status: 0 when the hub answered (APPROVED or DECLINED: a decline is an answer),
// 1 when the call failed with a gRPC status, 2 for a usage or local setup problem.
// See README.md.

const { parseArgs } = require('node:util');
const crypto = require('node:crypto');
const { loadCampus, pickCard, pickTerminal } = require('./lib/campus');
const { chipCryptogram } = require('./lib/credentials');
const { describeError } = require('./lib/errors');
const { call, loadContract, msToTimestamp, terminalChannel, timestampToMs } = require('./lib/hub');

const USAGE = `usage: node tap.js --keys DIR (--pki DIR | --plaintext) [options]

  --keys DIR          the hub's credentials export (hub.keys/, beside hub.db)
  --pki DIR           mutual TLS: DIR/ca.crt and DIR/terminals/<terminal>.crt|.key
  --plaintext         no TLS, identity by the onecard-terminal-id header (local demos only)
  --target HOST:PORT  the hub (default 127.0.0.1:50051)
  --server-name NAME  name in the hub's certificate (default localhost)
  --terminal ID       terminal to act as (default: the first canteen POS of the export)
  --card CARD_NO      card to tap (default: the first usable card of the terminal's school)
  --scene NAME        entry | exit | purchase (default: from the terminal's kind)
  --amount FEN        purchase amount in fen (default 1200; gates send 0)
  --pin DIGITS        PIN typed on the keypad (only above the PIN-free limit)
  --atc N             the chip's transaction counter (default: the export's counter + 1)
  --deadline-ms MS    deadline of each call (default 3000)`;

const SCENES = { entry: 'SCENE_GATE_ENTRY', exit: 'SCENE_GATE_EXIT', purchase: 'SCENE_CANTEEN_PURCHASE' };
const SCENE_NUMBER = { SCENE_GATE_ENTRY: 1, SCENE_GATE_EXIT: 2, SCENE_CANTEEN_PURCHASE: 3 };

class UsageError extends Error {}

function options(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      keys: { type: 'string' },
      pki: { type: 'string' },
      plaintext: { type: 'boolean', default: false },
      target: { type: 'string', default: '127.0.0.1:50051' },
      'server-name': { type: 'string', default: 'localhost' },
      terminal: { type: 'string' },
      card: { type: 'string' },
      scene: { type: 'string' },
      amount: { type: 'string' },
      pin: { type: 'string', default: '' },
      atc: { type: 'string' },
      'deadline-ms': { type: 'string', default: '3000' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!values.keys) throw new UsageError('--keys is required');
  if (Boolean(values.pki) === values.plaintext) throw new UsageError('give exactly one of --pki DIR or --plaintext');
  if (values.scene !== undefined && !(values.scene in SCENES)) throw new UsageError('--scene: entry, exit or purchase');
  for (const name of ['amount', 'atc', 'deadline-ms']) {
    if (values[name] !== undefined && !/^[0-9]+$/.test(values[name])) throw new UsageError(`--${name}: a whole number`);
  }
  return values;
}

/** Business time is China Standard Time (UTC+8, no daylight saving). */
function formatHubTime(ms, timeZone) {
  if (timeZone !== 'Asia/Shanghai') return `${new Date(ms).toISOString()} (${timeZone || 'UTC'})`;
  return new Date(ms + 8 * 3600_000).toISOString().replace('Z', '+08:00');
}

async function main(argv) {
  const opts = options(argv);
  const campus = loadCampus(opts.keys);
  const terminal = pickTerminal(campus, opts.terminal);
  const card = pickCard(campus, opts.card, terminal.school_id);
  const scene = SCENES[opts.scene ?? (terminal.kind === 'gate' ? 'entry' : 'purchase')];
  const amountFen = opts.amount !== undefined ? Number(opts.amount) : scene === SCENES.purchase ? 1200 : 0;
  const atc = opts.atc !== undefined ? Number(opts.atc) : card.atc + 1;
  const deadlineMs = Number(opts['deadline-ms']);

  const channel = terminalChannel(terminal.terminal_id, {
    pkiDir: opts.pki,
    serverName: opts['server-name'],
    plaintext: opts.plaintext,
  });
  if (opts.plaintext) {
    console.log(
      `mode: PLAIN TEXT — no encryption, no certificate; identity from the onecard-terminal-id header (local demos only)`,
    );
  } else {
    console.log(`mode: mutual TLS — certificate ${opts.pki}/terminals/${terminal.terminal_id}.crt, server name ${opts['server-name']}`);
  }
  console.log(`terminal: ${terminal.terminal_id} (${terminal.kind}, school ${terminal.school_id})`);

  const contract = loadContract();
  const terminals = new contract.TerminalService(opts.target, channel.credentials, channel.options);
  // One channel (one HTTP/2 connection) for both services, made once.
  const authorization = new contract.AuthorizationService(opts.target, channel.credentials, {
    ...channel.options,
    channelOverride: terminals.getChannel(),
  });
  try {
    // 1. The hub's clock: taps are stamped with the hub's business time, not the local clock.
    const clock = await call(terminals, 'GetClock', { terminal_id: terminal.terminal_id }, channel.metadata, deadlineMs);
    const fetchedAt = Date.now();
    const hubNowMs = timestampToMs(clock.now);
    const speed = clock.simulated ? clock.speed : 1;
    console.log(
      `hub clock: ${formatHubTime(hubNowMs, clock.time_zone)}${clock.simulated ? ` (simulated, speed ${speed})` : ''}`,
    );

    // 2. One chip tap: the card computes its cryptogram over the transaction fields.
    const tapTimeMs = hubNowMs + Math.round((Date.now() - fetchedAt) * speed);
    const cryptogram = chipCryptogram(card.cardKey, {
      cardNo: card.cardNo,
      atc,
      terminalId: terminal.terminal_id,
      scene: SCENE_NUMBER[scene],
      amountFen,
      tapTimeMs,
    });
    const request = {
      request_id: `node-${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`,
      terminal_id: terminal.terminal_id,
      scene,
      chip: { card_no: card.cardNo, atc, cryptogram },
      amount_fen: amountFen,
      pin: opts.pin,
      tap_time: msToTimestamp(tapTimeMs),
    };
    console.log(`tap: card ${card.cardNo}, atc ${atc}, ${scene}, amount_fen ${amountFen}, request_id ${request.request_id}`);
    const response = await call(authorization, 'Authorize', request, channel.metadata, deadlineMs);

    // 3. The answer. A decline is an answer with a reason, not an error.
    console.log(`decision: ${response.decision.replace('DECISION_', '')}`);
    const declined = response.decision === 'DECISION_DECLINED';
    console.log(`decline_reason: ${declined ? response.decline_reason.replace('DECLINE_REASON_', '') : '-'}`);
    console.log(`display_text: ${response.display_text}`);
    console.log(`holder: ${response.holder_name_masked || '-'}`);
    if (scene === SCENES.purchase) console.log(`balance_fen: ${response.balance_fen}`);
    console.log(`authorization_id: ${response.authorization_id}`);
    return 0;
  } catch (err) {
    if (typeof err.code !== 'number') throw err;
    const e = describeError(err);
    console.error(`error: ${e.codeName} (code ${e.code}): ${e.message}`);
    if (e.reason) console.error(`error_reason: ${e.reason}`);
    if (e.metadata.field) console.error(`error_field: ${e.metadata.field}`);
    if (e.metadata.correlation_id) console.error(`correlation_id: ${e.metadata.correlation_id}`);
    if (!e.reason && e.codeName === 'UNAVAILABLE') {
      console.error('hint: no answer from the hub; is it running at --target, and with --pki, did its CA issue this certificate?');
    }
    return 1;
  } finally {
    terminals.close(); // closes the shared channel
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    const usage = err instanceof UsageError || String(err.code).startsWith('ERR_PARSE_ARGS');
    console.error(`error: ${err.message}`);
    if (usage) console.error(USAGE);
    process.exitCode = 2;
  },
);
