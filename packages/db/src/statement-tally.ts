import { AsyncLocalStorage } from 'node:async_hooks';
import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryResult, TransactionSettings } from 'kysely';

/**
 * Counts the statements sent to the database (queries, and BEGIN/COMMIT/ROLLBACK/savepoints: each a
 * round trip) on behalf of whatever runs inside `tallyStatements`, so the coordinator can report
 * round trips per request. Outside a tally nothing is counted and the cost is one store lookup.
 */
export interface StatementTally {
  statements: number;
}

const current = new AsyncLocalStorage<StatementTally>();

/** Runs `fn`; statements it sends (directly or from async work it starts) are added to `tally`. */
export function tallyStatements<T>(tally: StatementTally, fn: () => T): T {
  return current.run(tally, fn);
}

function count(): void {
  const tally = current.getStore();
  if (tally) tally.statements++;
}

/** `dialect` with a driver that counts every statement into the current tally. */
export function countingDialect(dialect: Dialect): Dialect {
  return {
    createDriver: () => new CountingDriver(dialect.createDriver()),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  };
}

class CountingConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    count();
    return this.inner.executeQuery<R>(compiledQuery);
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    count();
    return this.inner.streamQuery<R>(compiledQuery, chunkSize);
  }
}

/** Drivers release and run transactions on their own connection objects: unwrap before passing on. */
function unwrap(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof CountingConnection ? connection.inner : connection;
}

class CountingDriver implements Driver {
  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new CountingConnection(await this.inner.acquireConnection());
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    count();
    return this.inner.beginTransaction(unwrap(connection), settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    count();
    return this.inner.commitTransaction(unwrap(connection));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    count();
    return this.inner.rollbackTransaction(unwrap(connection));
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['savepoint']>>[2]): Promise<void> {
    const inner = this.inner.savepoint?.bind(this.inner);
    if (!inner) throw new Error('the database driver does not support savepoints');
    count();
    await inner(unwrap(connection), name, compile);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['rollbackToSavepoint']>>[2]): Promise<void> {
    const inner = this.inner.rollbackToSavepoint?.bind(this.inner);
    if (!inner) throw new Error('the database driver does not support savepoints');
    count();
    await inner(unwrap(connection), name, compile);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: Parameters<NonNullable<Driver['releaseSavepoint']>>[2]): Promise<void> {
    const inner = this.inner.releaseSavepoint?.bind(this.inner);
    if (!inner) throw new Error('the database driver does not support savepoints');
    count();
    await inner(unwrap(connection), name, compile);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(unwrap(connection));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}
