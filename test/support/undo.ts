/**
 * What a set-up has opened, undone last-first: every step runs even when an earlier one fails,
 * and what failed is thrown afterwards (the one error, or an AggregateError of several).
 */
export class UndoStack {
  private steps: (() => unknown)[] = [];

  push(step: () => unknown): void {
    this.steps.push(step);
  }

  async run(what = 'tear-down'): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${what} failed`);
  }
}
