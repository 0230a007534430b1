// The `sec-agree` option tag (RFC 3329 §3) in Require / Proxy-Require / Supported values: the UE
// sends it (24.229 §5.1.1.2.1); the P-CSCF strips it before forwarding (spec digest §5.2, §5.6).
import { normaliseHyphens } from './codec.ts';

/** The `sec-agree` option tag of Require / Proxy-Require / Supported (RFC 3329 §2.1). */
export const SEC_AGREE_TAG = 'sec-agree';

function tagsOf(values: string | readonly string[]): string[] {
  const list = typeof values === 'string' ? [values] : values;
  return list
    .flatMap((v) => v.split(','))
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

// Compared case-insensitively with unicode hyphens folded, like the rest of this layer.
const isSecAgree = (t: string): boolean => normaliseHyphens(t).toLowerCase() === SEC_AGREE_TAG;

/** Whether any instance of the header lists `sec-agree`. */
export function hasSecAgreeTag(values: string | readonly string[]): boolean {
  return tagsOf(values).some(isSecAgree);
}

/**
 * The header's value without `sec-agree`: the remaining option tags (all instances merged) joined
 * by ", ", or `undefined` when none remain, meaning the header is to be dropped (24.228 flows).
 */
export function removeSecAgreeTag(values: string | readonly string[]): string | undefined {
  // What every UE sends (24.229 §5.1.1.2.1: `Require: sec-agree`): nothing to split.
  if (typeof values === 'string' ? values === SEC_AGREE_TAG : values.length === 1 && values[0] === SEC_AGREE_TAG) return undefined;
  const rest = tagsOf(values).filter((t) => !isSecAgree(t));
  return rest.length === 0 ? undefined : rest.join(', ');
}
