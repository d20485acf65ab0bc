import type { Exchange } from '../../exchange/exchange.ts';
import type { Processor } from '../../spi/processor.ts';
import { describeExpression, toTest, type Predicate, type Test } from '../expression.ts';
import type { StepDefinition } from '../step.ts';

export interface ChoiceBranch {
  readonly predicate: Predicate;
  readonly test: Test;
  readonly steps: StepDefinition[];
}

export interface ChoiceStep extends StepDefinition {
  readonly branches: ChoiceBranch[];
  otherwise: StepDefinition[] | undefined;
  addWhen(predicate: Predicate): StepDefinition[];
}

/** The Content-Based Router: the first branch whose predicate matches runs, else otherwise. */
export function choiceStep(): ChoiceStep {
  const branches: ChoiceBranch[] = [];
  const step: ChoiceStep = {
    kind: 'choice',
    get label() {
      return `choice(${branches.map((b) => `when(${describeExpression(b.predicate)})`).join(', ')}${step.otherwise ? ', otherwise' : ''})`;
    },
    branches,
    otherwise: undefined,
    addWhen(predicate: Predicate) {
      const steps: StepDefinition[] = [];
      branches.push({ predicate, test: toTest(predicate), steps });
      return steps;
    },
    async compile(compiler) {
      const compiled: Array<{ test: Test; body: Processor }> = [];
      for (const b of branches) compiled.push({ test: b.test, body: await compiler.compile(b.steps) });
      const fallback = step.otherwise ? await compiler.compile(step.otherwise) : undefined;
      return async (exchange: Exchange) => {
        for (const branch of compiled) {
          if (await branch.test(exchange)) return branch.body(exchange);
        }
        return fallback?.(exchange);
      };
    },
  };
  return step;
}
