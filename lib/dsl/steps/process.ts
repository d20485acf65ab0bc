import type { Processor } from '../../spi/processor.ts';
import type { StepDefinition } from '../step.ts';

/** A processor object in Camel's style, for users who prefer classes to functions. */
export interface ProcessorObject {
  process: Processor;
}

export function processStep(processor: Processor | ProcessorObject): StepDefinition {
  const fn: Processor = typeof processor === 'function' ? processor : (exchange) => processor.process(exchange);
  const name = typeof processor === 'function' ? processor.name : processor.constructor?.name;
  return { kind: 'process', label: `process(${name || 'fn'})`, compile: () => fn };
}
