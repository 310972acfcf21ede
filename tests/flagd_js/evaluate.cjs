// Evaluates a flagd flag document with the JavaScript flagd core (@openfeature/flagd-core),
// for tests/evaluate/test_flagd_js_agreement.py: one process for every context.
//
// Input (JSON, from the file named by the first argument, or standard input):
//   {"document": <flagd flags JSON>, "types": {"<flag key>": "boolean"|"string"|"number"|"object"},
//    "contexts": [<evaluation context>, ...], "hash": ["<text>", ...]}
// Output (JSON on standard output):
//   {"versions": {...}, "results": [[[variant, value, errorCode], ...one per key...], ...one per context],
//    "keys": [...], "hash": [<the core's MurmurHash3 of each text>, ...]}
'use strict';
const fs = require('node:fs');
const { FlagdCore } = require('@openfeature/flagd-core');
const MurmurHash3 = require('imurmurhash');

const input = JSON.parse(fs.readFileSync(process.argv[2] || 0, 'utf8'));
const silent = { error() {}, warn() {}, info() {}, debug() {} };
const core = new FlagdCore(undefined, silent);
core.setConfigurations(JSON.stringify(input.document));

const defaults = { boolean: false, string: '', number: -1, object: {} };
const keys = Object.keys(input.types || {}).sort();
const results = (input.contexts || []).map((ctx) => keys.map((key) => {
  const type = input.types[key];
  const r = core.resolve(type, key, defaults[type], ctx, silent);
  return [r.variant === undefined ? null : r.variant, r.value, r.errorCode || null];
}));
// the very hash function the core's fractional calls (flagd-core imports imurmurhash)
const hash = (input.hash || []).map((text) => new MurmurHash3(text).result() >>> 0);
const path = require('node:path');
const version = (name) => JSON.parse(fs.readFileSync(
  path.join(__dirname, 'node_modules', name, 'package.json'), 'utf8')).version;
process.stdout.write(JSON.stringify({
  versions: { '@openfeature/flagd-core': version('@openfeature/flagd-core'),
              imurmurhash: version('imurmurhash'), 'json-logic-engine': version('json-logic-engine'),
              node: process.version },
  keys, results, hash,
}));
