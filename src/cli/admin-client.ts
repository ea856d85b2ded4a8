// Calls a mutation of the members' admin API for the CLI: against a local cluster
// (`--dir`, token from its cluster file) or any member (`--api URL --token T`).
// Tries each member until one answers; non-leaders forward to the leader.
import path from 'node:path';
import { UserError } from '../errors.ts';
import { nodeHost, requireCluster } from '../local/layout.ts';

export interface AdminTarget {
  dir?: string;
  api?: string;
  token?: string;
}

const TIMEOUT_MS = 30_000;

export async function callAdmin(
  target: AdminTarget,
  method: 'POST' | 'DELETE',
  route: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const { urls, token } = resolve(target);
  let lastProblem = 'no member answered';
  for (const url of urls) {
    let response: Response;
    try {
      response = await fetch(`${url}${route}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      lastProblem = `${url}: ${(error as Error).message}`;
      continue;
    }
    const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (response.ok) return answer;
    if (response.status === 401) {
      throw new UserError(`${url} refused the token`, 'pass the api.token of the cluster with --token');
    }
    if (response.status !== 503) {
      throw new UserError(
        `${route.slice(1)} refused: ${String(answer.error ?? response.status)}`,
        'check pgward status',
      );
    }
    lastProblem = `${url}: ${String(answer.error ?? response.status)}`;
  }
  throw new UserError(
    `${route.slice(1)} failed (${lastProblem})`,
    'check that the sidecars run: pgward status',
  );
}

function resolve(target: AdminTarget): { urls: string[]; token: string } {
  if (target.api !== undefined) {
    if (target.token === undefined)
      throw new UserError('--api needs --token', 'pass the api.token of the cluster');
    return { urls: [target.api.replace(/\/$/, '')], token: target.token };
  }
  const cluster = requireCluster(path.resolve(target.dir ?? '.pgward'));
  return {
    urls: cluster.nodes.map((n) => `http://${nodeHost(n)}:${n.apiPort}`),
    token: target.token ?? cluster.apiToken,
  };
}
