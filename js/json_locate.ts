// Where a JSON path (`density.widht`, `g2[1][0]`) is in the user's own JSON
// text, so that errors about hyper-parameter files give a line and column
// the user can open. A small scanner over the text: it follows only the
// path, skipping every other value.

/** Splits `a.b[2].c` into ['a', 'b', 2, 'c']. */
export function splitJsonPath(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const part of path.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** 1-based line and column of the key (or array element) at `path`, or undefined. */
export function locateJsonPath(text: string, path: Array<string | number>): { line: number; column: number } | undefined {
  let pos = 0;
  const ws = () => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  const skipString = () => {
    pos++; // opening quote
    while (pos < text.length && text[pos] !== '"') pos += text[pos] === '\\' ? 2 : 1;
    pos++;
  };
  const readString = (): string => {
    const start = pos;
    skipString();
    try {
      return JSON.parse(text.slice(start, pos)) as string;
    } catch {
      return '';
    }
  };
  const skipValue = (): void => {
    ws();
    const c = text[pos];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      pos++;
      for (;;) {
        ws();
        if (pos >= text.length) return;
        if (text[pos] === close) {
          pos++;
          return;
        }
        if (c === '{') {
          readString();
          ws();
          pos++; // ':'
        }
        skipValue();
        ws();
        if (text[pos] === ',') pos++;
      }
    }
    while (pos < text.length && !/[\s,}\]]/.test(text[pos])) pos++;
  };
  // follow the path
  let found = -1;
  for (let depth = 0; depth < path.length; depth++) {
    ws();
    const want = path[depth];
    const c = text[pos];
    if (c !== '{' && c !== '[') return undefined;
    const close = c === '{' ? '}' : ']';
    pos++;
    let index = 0;
    let hit = false;
    for (;;) {
      ws();
      if (pos >= text.length || text[pos] === close) return undefined;
      const here = pos;
      if (c === '{') {
        const key = readString();
        ws();
        pos++; // ':'
        if (key === want) {
          found = here;
          hit = true;
          break;
        }
      } else if (index === want) {
        found = here;
        hit = true;
        break;
      }
      skipValue();
      ws();
      if (text[pos] === ',') pos++;
      index++;
    }
    if (!hit) return undefined;
  }
  if (found < 0) return undefined;
  const before = text.slice(0, found);
  const line = before.split('\n').length;
  const column = found - before.lastIndexOf('\n');
  return { line, column };
}
