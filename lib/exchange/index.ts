export { Headers } from './headers.ts';
export { Message } from './message.ts';
export { Exchange, ExchangeProperty, nextExchangeId, type ExchangePattern } from './exchange.ts';
