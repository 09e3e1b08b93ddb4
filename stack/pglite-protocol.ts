/**
 * The PostgreSQL wire protocol as the PGlite server (stack/pglite-wire.ts) handles it: framing
 * limits and startup request codes, the messages it writes itself (ErrorResponse, Sync,
 * CopyFail, Query, Close), what it reads of the backend's answers (ReadyForQuery and the
 * transaction status), and the renaming that keeps each connection's prepared statements and
 * portals apart.
 */

export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;
export const MAX_STARTUP_LENGTH = 10_000;
export const MAX_MESSAGE_LENGTH = 1 << 30;

function cstringEnd(b: Buffer, from: number): number {
  const i = b.indexOf(0, from);
  if (i < 0) throw new Error('malformed message: unterminated string');
  return i;
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** An ErrorResponse with severity, SQLSTATE and message. */
export function errorResponse(severity: 'ERROR' | 'FATAL', code: string, text: string): Buffer {
  const f = (t: string, v: string) => Buffer.concat([Buffer.from(t, 'latin1'), Buffer.from(v, 'utf8'), Buffer.from([0])]);
  return message('E', Buffer.concat([f('S', severity), f('V', severity), f('C', code), f('M', text), Buffer.from([0])]));
}

export const SYNC = message('S', Buffer.alloc(0));
export const COPY_FAIL = message('f', Buffer.from('connection closed\0', 'utf8'));
export const simpleQuery = (sql: string) => message('Q', Buffer.concat([Buffer.from(sql, 'utf8'), Buffer.from([0])]));
export const closeStatement = (name: string) =>
  message('C', Buffer.concat([Buffer.from('S'), Buffer.from(name, 'utf8'), Buffer.from([0])]));

/**
 * Walk the backend messages of `out`: whether it ends with ReadyForQuery (asynchronous messages —
 * NoticeResponse, NotificationResponse, ParameterStatus — may follow it), and the last status seen.
 */
export function readyState(out: Uint8Array): { endsReady: boolean; status?: 'I' | 'T' | 'E' } {
  const b = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  let o = 0;
  let endsReady = false;
  let status: 'I' | 'T' | 'E' | undefined;
  while (o + 5 <= b.length) {
    const type = b[o]!;
    const len = b.readInt32BE(o + 1);
    if (len < 4) break;
    if (type === 0x5a /* Z */ && o + 5 < b.length) {
      status = String.fromCharCode(b[o + 5]!) as 'I' | 'T' | 'E';
      endsReady = true;
    } else if (type !== 0x4e /* N */ && type !== 0x41 /* A */ && type !== 0x53 /* S */) {
      endsReady = false;
    }
    o += 1 + len;
  }
  return { endsReady, status };
}

/**
 * Give the named prepared statements and portals of one typed frontend message of connection
 * `connId` that connection's private names, and keep `statements` (the connection's prepared
 * statements, by private name) up to date with what it prepares and closes.
 */
export function privateNames(m: Buffer, connId: number, statements: Set<string>): Buffer {
  if (m.length < 6) return m;
  const type = String.fromCharCode(m[0]!);
  const prefix = `_c${connId}_`;
  const renameAt = (start: number, track: boolean): Buffer => {
    const end = cstringEnd(m, start);
    if (end === start) return m; // unnamed
    const name = prefix + m.toString('utf8', start, end);
    if (track && type === 'P') statements.add(name);
    if (track && type === 'C') statements.delete(name);
    return message(type, Buffer.concat([m.subarray(5, start), Buffer.from(name, 'utf8'), m.subarray(end)]));
  };
  switch (type) {
    case 'P': // Parse: statement name first
      return renameAt(5, true);
    case 'E': // Execute: portal name first
      return renameAt(5, false);
    case 'D': // Describe / Close: 'S' statement or 'P' portal, then the name
    case 'C':
      return renameAt(6, m[5] === 0x53 /* S */);
    case 'B': {
      // Bind: portal name, then statement name
      const portalEnd = cstringEnd(m, 5);
      const stmtEnd = cstringEnd(m, portalEnd + 1);
      const portal = m.toString('utf8', 5, portalEnd);
      const stmt = m.toString('utf8', portalEnd + 1, stmtEnd);
      if (!portal && !stmt) return m;
      const name = (s: string) => Buffer.from(s ? prefix + s : '', 'utf8');
      return message('B', Buffer.concat([name(portal), Buffer.from([0]), name(stmt), Buffer.from([0]), m.subarray(stmtEnd + 1)]));
    }
    default:
      return m;
  }
}
