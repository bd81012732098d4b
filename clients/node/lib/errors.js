'use strict';
// Reads the error model of OneCard Hub (AIP-193) from a failed call: the hub puts a
// google.rpc.Status with one google.rpc.ErrorInfo in the `grpc-status-details-bin` trailer.
// ErrorInfo.reason is an onecard.common.v1.ErrorReason name without its prefix
// ("FIELD_INVALID", "CALLER_UNKNOWN", ...); metadata.field names the offending request field.
// The google/rpc protos are vendored copies (vendor/google/rpc, Apache-2.0, from googleapis).

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const VENDOR_DIR = path.join(__dirname, '..', 'vendor');
const DETAILS_TRAILER = 'grpc-status-details-bin';
const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';

let types = null;

function rpcTypes() {
  if (types === null) {
    const root = new protobuf.Root();
    // Imports resolve inside vendor/; google/protobuf/*.proto are protobufjs's built-in copies.
    root.resolvePath = (origin, target) =>
      target.startsWith('google/protobuf/') ? target : path.join(VENDOR_DIR, target);
    root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
    types = { Status: root.lookupType('google.rpc.Status'), ErrorInfo: root.lookupType('google.rpc.ErrorInfo') };
  }
  return types;
}

/** The name of a gRPC status code: 3 -> "INVALID_ARGUMENT". */
function codeName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) ?? `CODE_${code}`;
}

/**
 * What a failed call says about itself: { code, codeName, message, reason, domain, metadata }.
 * `reason`, `domain` and `metadata` are empty when the trailer is absent (e.g. a failed
 * TLS handshake seen as UNAVAILABLE: the hub never answered).
 */
function describeError(err) {
  const result = {
    code: err.code,
    codeName: codeName(err.code),
    message: err.details ?? err.message,
    reason: '',
    domain: '',
    metadata: {},
  };
  const raw = err.metadata ? err.metadata.get(DETAILS_TRAILER) : [];
  if (raw.length === 0) return result;
  const { Status, ErrorInfo } = rpcTypes();
  const status = Status.decode(Buffer.from(raw[0]));
  result.message = status.message || result.message;
  for (const detail of status.details) {
    if (detail.type_url === ERROR_INFO_TYPE || detail.typeUrl === ERROR_INFO_TYPE) {
      const info = ErrorInfo.decode(detail.value);
      result.reason = info.reason;
      result.domain = info.domain;
      result.metadata = { ...info.metadata };
      break;
    }
  }
  return result;
}

module.exports = { describeError, codeName };
