// Counters a metrics exporter reads (src/api/ maps them to prom-client); plain numbers, no IO.
export interface ProxyCounters {
  /** Client connections accepted, refused over max_client_conn, and completed logins. */
  clientsAccepted: number;
  clientsRefused: number;
  loginsTotal: number;
  /** Sessions ended with a FATAL protocol error (bad input). */
  protocolErrors: number;
  cancelsForwarded: number;
  /** Backend connections lost or fenced while serving a client. */
  backendsLost: number;
  /** Term changes seen (each fences the backends of older terms). */
  termChanges: number;
}

export function newCounters(): ProxyCounters {
  return {
    clientsAccepted: 0,
    clientsRefused: 0,
    loginsTotal: 0,
    protocolErrors: 0,
    cancelsForwarded: 0,
    backendsLost: 0,
    termChanges: 0,
  };
}

/** A point-in-time view for metrics and the status page. */
export interface ProxyStats extends ProxyCounters {
  clients: number;
  backendsTotal: number;
  backendsIdle: number;
  backendsWaiting: number;
  heldRequests: number;
  heldBytes: number;
  heldTotal: number;
  holdExpiredTotal: number;
  term: number;
}
