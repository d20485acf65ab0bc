import { expect } from 'chai';
import type { Elector } from '../../lib/cluster/election/elector.ts';

/**
 * Records, from each elector's own 'change' events, the intervals during which it reported leading,
 * and checks that no two intervals overlap: the at-most-one-leader invariant, seen from inside.
 */
export function recordLeadership(electors: readonly Elector[]) {
  const intervals: Array<[string, number, number]> = [];
  const open = new Map<string, number>();
  for (const e of electors) {
    e.on('change', ({ isLocal }) => {
      if (isLocal) open.set(e.memberId, performance.now());
      else if (open.has(e.memberId)) {
        intervals.push([e.memberId, open.get(e.memberId)!, performance.now()]);
        open.delete(e.memberId);
      }
    });
  }
  return {
    assertNoOverlap(minIntervals = 1): void {
      const all = [...intervals, ...[...open].map(([id, start]) => [id, start, performance.now()] as [string, number, number])];
      all.sort((x, y) => x[1] - y[1]);
      expect(all.length).to.be.at.least(minIntervals);
      for (let i = 1; i < all.length; i += 1) {
        expect(all[i]![1], `${all[i - 1]![0]} and ${all[i]![0]} led at the same time`).to.be.at.least(all[i - 1]![2]);
      }
    },
  };
}
