/** Everything an async iterable yields, in order (Array.fromAsync is Node 22+). */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}
