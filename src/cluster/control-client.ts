// One long-lived connection to the local PostgreSQL for failover's control
// statements. A failover runs a dozen short statements back to back; a fresh
// connection each costs tens of milliseconds on a loaded machine, which is RTO.
import pg from 'pg';

export class ControlClient {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;

  constructor(private readonly config: () => pg.ClientConfig) {}

  async query<Row extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<Row[]> {
    const client = await this.connect();
    try {
      return (await client.query<Row>(sql, params)).rows;
    } catch (error) {
      // A broken connection is dropped; a SQL error leaves it usable.
      if ((error as { code?: string }).code === undefined) this.close();
      throw error;
    }
  }

  close(): void {
    const client = this.client;
    this.client = null;
    this.connecting = null;
    client?.end().catch(() => {});
  }

  private connect(): Promise<pg.Client> {
    if (this.client !== null) return Promise.resolve(this.client);
    if (this.connecting !== null) return this.connecting;
    const client = new pg.Client({ ...this.config(), application_name: 'pgward_failover' });
    client.on('error', () => {
      if (this.client === client) this.client = null;
    });
    client.on('end', () => {
      if (this.client === client) this.client = null;
    });
    this.connecting = client
      .connect()
      .then(() => {
        this.client = client;
        return client;
      })
      .finally(() => {
        this.connecting = null;
      });
    return this.connecting;
  }
}
