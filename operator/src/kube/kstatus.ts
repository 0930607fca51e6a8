// kstatus (sigs.k8s.io/cli-utils/pkg/kstatus: Flux health checks, `kubectl wait`, Config Sync and
// others) judges a custom resource by status.observedGeneration and three conditions:
// `Reconciling=True` means in progress, `Stalled=True` means failed until a human acts, otherwise
// the resource is Current. Our own conditions (Succeeded, Progressing, Ready, ...) say more; these
// two are derived from them in one place so generic tools read our objects correctly.
import type { SetCondition } from './status.js';

export interface Why {
  reason: string;
  message: string;
}

/** What kstatus should conclude: in progress (reconciling), failed (stalled), or neither (current). */
export interface KstatusState {
  reconciling?: Why;
  stalled?: Why;
}

export function setKstatusConditions(set: SetCondition, state: KstatusState): void {
  if (state.stalled) {
    set('Stalled', 'True', state.stalled.reason, state.stalled.message);
    set('Reconciling', 'False', 'Stalled', 'no progress until the problem in Stalled is fixed');
  } else if (state.reconciling) {
    set('Reconciling', 'True', state.reconciling.reason, state.reconciling.message);
    set('Stalled', 'False', 'NotStalled', 'no problem that needs a human');
  } else {
    set('Reconciling', 'False', 'Reconciled', 'nothing in progress');
    set('Stalled', 'False', 'NotStalled', 'no problem that needs a human');
  }
}
