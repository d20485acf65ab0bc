import { ExchangeProperty, type Exchange } from '../../exchange/exchange.ts';
import { isPromise } from '../../spi/processor.ts';
import { describeExpression, toTest, type Predicate } from '../expression.ts';
import type { StepDefinition } from '../step.ts';

export interface FilterStep extends StepDefinition {
  readonly children: StepDefinition[];
}

/** The Filter EIP: the nested steps run only for exchanges that match; the rest skip them. */
export function filterStep(predicate: Predicate): FilterStep {
  const test = toTest(predicate);
  const children: StepDefinition[] = [];
  return {
    kind: 'filter',
    label: `filter(${describeExpression(predicate)})`,
    children,
    async compile(compiler) {
      const body = await compiler.compile(children);
      const decide = (exchange: Exchange, matched: boolean) => {
        exchange.properties.set(ExchangeProperty.Filtered, matched);
        return matched ? body(exchange) : undefined;
      };
      return (exchange) => {
        const matched = test(exchange);
        if (isPromise(matched)) return matched.then((m) => decide(exchange, m));
        return decide(exchange, matched);
      };
    },
  };
}
