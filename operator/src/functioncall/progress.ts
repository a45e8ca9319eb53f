// Progress updates are frequent and cosmetic: the first is written at once, later ones at most
// once per interval per call (the latest wins).
export interface ProgressValue {
  current: number;
  total: number;
  message?: string;
}

export class ProgressThrottle {
  private readonly state = new Map<string, { last: number; latest?: ProgressValue; timer?: NodeJS.Timeout }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
    private readonly write: (key: string, p: ProgressValue) => Promise<void>,
  ) {}

  update(key: string, p: ProgressValue): void {
    let s = this.state.get(key);
    if (!s) this.state.set(key, (s = { last: 0 }));
    const wait = s.last + this.intervalMs - this.now();
    if (wait <= 0 && !s.timer) {
      s.last = this.now();
      void this.write(key, p).catch(() => undefined);
      return;
    }
    s.latest = p;
    if (s.timer) return;
    const st = s;
    st.timer = setTimeout(
      () => {
        st.timer = undefined;
        const latest = st.latest;
        st.latest = undefined;
        if (!latest) return;
        st.last = this.now();
        void this.write(key, latest).catch(() => undefined);
      },
      Math.max(0, wait),
    );
    st.timer.unref?.();
  }

  /** The call finished: drop pending updates. */
  forget(key: string): void {
    const s = this.state.get(key);
    if (s?.timer) clearTimeout(s.timer);
    this.state.delete(key);
  }
}
