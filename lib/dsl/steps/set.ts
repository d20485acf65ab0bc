import type { Exchange } from '../../exchange/exchange.ts';
import { isPromise } from '../../spi/processor.ts';
import { describeExpression, toEvaluator, type Expression } from '../expression.ts';
import type { StepDefinition } from '../step.ts';

/** A step that computes a value and stores it somewhere on the exchange. */
function assign(kind: string, label: string, expression: Expression | unknown, apply: (exchange: Exchange, value: unknown) => void): StepDefinition {
  const evaluate = toEvaluator(expression);
  return {
    kind,
    label,
    compile: () => (exchange) => {
      const value = evaluate(exchange);
      if (isPromise(value)) return value.then((v) => apply(exchange, v));
      apply(exchange, value);
    },
  };
}

export function setBodyStep(expression: Expression | unknown): StepDefinition {
  return assign('setBody', `setBody(${describeExpression(expression)})`, expression, (ex, v) => {
    ex.message.body = v;
  });
}

/** Camel's transform: in this engine the same as setBody, kept for Camel users' muscle memory. */
export function transformStep(expression: Expression | unknown): StepDefinition {
  return assign('transform', `transform(${describeExpression(expression)})`, expression, (ex, v) => {
    ex.message.body = v;
  });
}

export function setHeaderStep(name: string, expression: Expression | unknown): StepDefinition {
  return assign('setHeader', `setHeader(${name}, ${describeExpression(expression)})`, expression, (ex, v) => {
    ex.message.headers.set(name, v);
  });
}

export function setPropertyStep(name: string, expression: Expression | unknown): StepDefinition {
  return assign('setProperty', `setProperty(${name}, ${describeExpression(expression)})`, expression, (ex, v) => {
    ex.properties.set(name, v);
  });
}

export function removeHeaderStep(name: string): StepDefinition {
  return { kind: 'removeHeader', label: `removeHeader(${name})`, compile: () => (ex) => void ex.message.headers.delete(name) };
}

export function removePropertyStep(name: string): StepDefinition {
  return { kind: 'removeProperty', label: `removeProperty(${name})`, compile: () => (ex) => void ex.properties.delete(name) };
}
