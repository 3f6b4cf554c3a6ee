import { KubeApiError } from './objects';

/** One requirement of a label selector: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`. */
interface Requirement {
  key: string;
  op: 'in' | 'notin' | 'exists' | '!exists';
  values: string[];
}

export type LabelSelector = (labels: Record<string, string> | undefined) => boolean;

/** Splits on commas that are not inside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter(Boolean);
}

function parseTerm(term: string): Requirement {
  const set = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (set) {
    const values = set[3]!.split(',').map((v) => v.trim());
    return { key: set[1]!, op: set[2] as 'in' | 'notin', values };
  }
  const eq = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s,]*)$/.exec(term);
  if (eq) return { key: eq[1]!, op: eq[2] === '!=' ? 'notin' : 'in', values: [eq[3]!] };
  if (/^![^\s!=]+$/.test(term)) return { key: term.slice(1), op: '!exists', values: [] };
  if (/^[^\s!=()]+$/.test(term)) return { key: term, op: 'exists', values: [] };
  throw new KubeApiError(400, 'BadRequest', `unable to parse requirement: found '${term}'`);
}

/** Parses a `labelSelector` query parameter as the API server does; an empty selector matches everything. */
export function parseLabelSelector(s: string | null | undefined): LabelSelector {
  if (!s?.trim()) return () => true;
  const reqs = splitTerms(s).map(parseTerm);
  return (labels) =>
    reqs.every((r) => {
      const has = labels !== undefined && Object.hasOwn(labels, r.key);
      const v = has ? labels![r.key]! : undefined;
      switch (r.op) {
        case 'exists':
          return has;
        case '!exists':
          return !has;
        case 'in':
          return has && r.values.includes(v!);
        default: // notin
          return !has || !r.values.includes(v!);
      }
    });
}

/** `fieldSelector` support for the fields this server indexes: metadata.name, metadata.namespace, spec.nodeName. */
export function parseFieldSelector(s: string | null | undefined): (o: Record<string, unknown>) => boolean {
  if (!s?.trim()) return () => true;
  const reqs = splitTerms(s).map((term) => {
    const m = /^([a-zA-Z.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new KubeApiError(400, 'BadRequest', `invalid field selector: '${term}'`);
    const path = m[1]!;
    if (!['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase'].includes(path))
      throw new KubeApiError(400, 'BadRequest', `field label not supported: ${path}`);
    return { path: path.split('.'), neg: m[2] === '!=', value: m[3]! };
  });
  return (o) =>
    reqs.every((r) => {
      let cur: unknown = o;
      for (const p of r.path) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
      const eq = String(cur ?? '') === r.value;
      return r.neg ? !eq : eq;
    });
}
