// Own-property access for id-keyed records. Ids come from peers: a key such as "constructor"
// must never resolve to something inherited, and an invalid entry's key (kept in `decided`)
// may even be "__proto__", which plain assignment would turn into a prototype change.

export type IdRecord<T> = Record<string, T>;

export function getOwn<T>(rec: Readonly<IdRecord<T>>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

export function putOwn<T>(rec: IdRecord<T>, key: string, value: T): void {
  Object.defineProperty(rec, key, { value, writable: true, enumerable: true, configurable: true });
}

export function deleteOwn<T>(rec: IdRecord<T>, key: string): void {
  if (Object.hasOwn(rec, key)) delete rec[key];
}
