import { DromedaryError } from '../errors.ts';

/**
 * A Simple expression or predicate that cannot be compiled. Raised at compile time (route build time),
 * never while routing. The message quotes the expression, marks the position with a caret and says
 * what was expected there, so the author can fix it without reading the parser.
 */
export class SimpleSyntaxError extends DromedaryError {
  readonly expression: string;
  readonly position: number;

  constructor(expression: string, position: number, problem: string) {
    const at = Math.max(0, Math.min(position, expression.length));
    // One line for the caret to line up with: newlines and tabs would shift it.
    const shown = expression.replace(/[\r\n\t]/g, ' ');
    super(
      'SIMPLE_SYNTAX',
      `Invalid Simple expression ${JSON.stringify(expression)} at position ${at}: ${problem}\n  ${shown}\n  ${' '.repeat(at)}^`,
    );
    this.expression = expression;
    this.position = at;
  }
}
