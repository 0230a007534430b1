// The sec-agree option tag in Require / Proxy-Require / Supported (RFC 3329 §3; digest §5.2, §5.6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasSecAgreeTag, removeSecAgreeTag } from './option-tag.ts';

test('detects sec-agree in a comma list and across repeated headers, case-insensitively', () => {
  assert.equal(hasSecAgreeTag('path, sec-agree'), true);
  assert.equal(hasSecAgreeTag(['path', ' Sec-Agree ']), true);
  assert.equal(hasSecAgreeTag('sec\u2011agree'), true);
  assert.equal(hasSecAgreeTag('path, sec-agreement'), false);
  assert.equal(hasSecAgreeTag([]), false);
});

test('removes sec-agree and keeps the other tags in order', () => {
  assert.equal(removeSecAgreeTag('path,sec-agree, gruu'), 'path, gruu');
  assert.equal(removeSecAgreeTag(['sec-agree', 'path']), 'path');
});

test('returns undefined when nothing remains, so the caller drops the header (Proxy-Require: sec-agree)', () => {
  assert.equal(removeSecAgreeTag('sec-agree'), undefined);
  assert.equal(removeSecAgreeTag(['SEC-AGREE', ' , ']), undefined);
});
