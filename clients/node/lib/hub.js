'use strict';
// The connection to OneCard Hub: the contract loaded from ../../protos at run time with
// @grpc/proto-loader, and the channel credentials (mutual TLS from the PKI folder, or
// plain text with the identity header for local demos).
//
// PKI folder layout (made by `onecard-hub pki`): ca.crt, terminals/<terminal_id>.crt|.key.
// The hub's server certificate names DNS "localhost" and IP 127.0.0.1.

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', '..', 'protos');
const PROTO_FILES = ['onecard/auth/v1/authorization_service.proto', 'onecard/terminal/v1/terminal_service.proto'];
const TERMINAL_HEADER = 'onecard-terminal-id';

function loadContract(protoRoot = PROTO_ROOT) {
  const definition = protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [protoRoot],
    keepCase: true, // field names as in the .proto: request_id, terminal_id, ...
    longs: Number, // int64 fen and Timestamp seconds fit a JS number
    enums: String, // "DECISION_APPROVED", "DECLINE_REASON_CARD_REPORTED_LOST", ...
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition);
  return {
    AuthorizationService: loaded.onecard.auth.v1.AuthorizationService,
    TerminalService: loaded.onecard.terminal.v1.TerminalService,
  };
}

/**
 * How to reach the hub as `terminalId`:
 *   { pkiDir, serverName }  mutual TLS; the certificate names the terminal, no header is sent
 *   { plaintext: true }     no TLS; the terminal names itself in the onecard-terminal-id header
 */
function terminalChannel(terminalId, { pkiDir, serverName = 'localhost', plaintext = false }) {
  if (plaintext) {
    const metadata = new grpc.Metadata();
    metadata.set(TERMINAL_HEADER, terminalId);
    return { credentials: grpc.credentials.createInsecure(), options: {}, metadata, mode: 'PLAIN TEXT' };
  }
  const read = (...parts) => {
    const file = path.join(pkiDir, ...parts);
    if (!fs.existsSync(file)) {
      throw new Error(`${file} not found: issue it with \`onecard-hub pki issue --dir ${pkiDir} --terminal ${terminalId}\``);
    }
    return fs.readFileSync(file);
  };
  const credentials = grpc.credentials.createSsl(
    read('ca.crt'),
    read('terminals', `${terminalId}.key`),
    read('terminals', `${terminalId}.crt`),
  );
  const options = { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName };
  return { credentials, options, metadata: new grpc.Metadata(), mode: 'mutual TLS' };
}

/** Calls one unary method as a promise, with a deadline. */
function call(client, method, request, metadata, deadlineMs) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + deadlineMs }, (err, response) =>
      err ? reject(err) : resolve(response),
    );
  });
}

/** Timestamp {seconds, nanos} <-> Unix milliseconds. */
function timestampToMs(ts) {
  return Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
}

function msToTimestamp(ms) {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

module.exports = { PROTO_ROOT, call, loadContract, msToTimestamp, terminalChannel, timestampToMs };
