// PostgreSQL log sequence numbers: 'X/Y' (two hex halves of a 64-bit position) <-> bigint.
const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): bigint {
  const match = LSN_PATTERN.exec(text);
  if (!match) throw new Error(`invalid LSN '${text}': expected two hex numbers like '0/3000060'`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Like parseLsn, but passes SQL NULL through (functions such as pg_last_wal_receive_lsn() return it). */
export function parseLsnOrNull(text: string | null | undefined): bigint | null {
  return text === null || text === undefined ? null : parseLsn(text);
}

export function formatLsn(lsn: bigint): string {
  if (lsn < 0n || lsn > 0xffffffffffffffffn) throw new RangeError(`LSN out of range: ${lsn}`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Bytes from `behind` to `ahead`, clamped at 0 (a backup may briefly report more than a stale primary). */
export function lagBytes(ahead: bigint, behind: bigint): number {
  return ahead > behind ? Number(ahead - behind) : 0;
}
