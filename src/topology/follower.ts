// The topology a proxy-only sidecar routes by: views offered by the Redis channel
// and by long-polling the members' API, merged so that the freshest term wins and
// an older term never changes routing.
import type { ClusterView, TopologySource } from '../cluster/view.ts';
import type { Logger } from '../log.ts';
import { type MergeOutcome, mergeView } from './merge.ts';

export class FollowerTopology implements TopologySource {
  private view: ClusterView;
  private readonly listeners = new Set<(view: ClusterView) => void>();

  constructor(
    initial: ClusterView,
    private readonly logger: Logger,
  ) {
    this.view = initial;
  }

  current(): ClusterView {
    return this.view;
  }

  subscribe(listener: (view: ClusterView) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Offers a view learned from `via`; listeners hear of it only if it changes the merged view. */
  offer(incoming: ClusterView, via: string): MergeOutcome {
    const { view, outcome } = mergeView(this.view, incoming);
    if (outcome === 'conflict') {
      this.logger.warn('two primaries reported for one term; keeping the first', {
        via,
        term: incoming.term,
        kept: this.view.primary,
        ignored: incoming.primary,
      });
    }
    if (outcome === 'newer-term' || outcome === 'same-term-update') {
      if (outcome === 'newer-term') {
        this.logger.info('topology: new term', { via, term: view.term, primary: view.primary });
      }
      this.view = view;
      for (const listener of this.listeners) listener(view);
    }
    return outcome;
  }
}
