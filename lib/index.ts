/**
 * dromedary's public API. Route files use `from`; programs build a Context and add routes to it.
 */
export { from, takePendingRoutes, errorHandler, onException, onCompletion, takePendingErrorHandling } from './dsl/global-routes.ts';
export { defaultErrorHandler, deadLetterChannel, ErrorHandlingScope } from './dsl/error-handling.ts';
export type { ErrorMatcher, ErrorType, ErrorCondition, RedeliveryOptions, OnExceptionOptions, DeadLetterOptions, OnCompletionOptions, ErrorHandlerDefinition } from './dsl/error-handling.ts';
export { ClauseDefinition } from './dsl/clause-definition.ts';
export { ErrorHeader, ErrorProperty, RedeliveryAbortedError } from './engine/error-handling.ts';
export type { Scheduler } from './engine/scheduler.ts';
export { RouteDefinition, RouteBuilder } from './dsl/route-definition.ts';
export type { Expression, ExpressionFn, Predicate } from './dsl/expression.ts';
export type { StepDefinition, RouteCompiler } from './dsl/step.ts';
export type { SplitOptions, AggregationStrategy } from './dsl/steps/split.ts';
export { MemoryIdempotentRepository, type IdempotentRepository } from './dsl/steps/idempotent-repository.ts';
export { NoMessageIdError, type IdempotentConsumerOptions } from './dsl/steps/idempotent-consumer.ts';
export type { MulticastOptions } from './dsl/steps/multicast.ts';
export { ThrottlerRejectedError, type ThrottleOptions } from './dsl/steps/throttle.ts';
export { InvalidCorrelationKeyError, type AggregateOptions, type CompletedBy } from './dsl/steps/aggregate.ts';
export { Context, type ContextOptions, type ContextService } from './engine/context.ts';
export { ProducerTemplate } from './engine/producer-template.ts';
export type { Route } from './engine/route.ts';
export { Exchange, ExchangeProperty, Message, Headers, type ExchangePattern } from './exchange/index.ts';
export type { Component, Endpoint, Consumer, Producer } from './spi/component.ts';
export type { Processor } from './spi/processor.ts';
export type { Meter, MeteredEndpoint } from './spi/endpoint-meters.ts';
export { ServiceSupport, type Service } from './spi/service.ts';
export { EndpointSupport, ConsumerSupport, ProducerSupport } from './spi/endpoint-support.ts';
export { DromedaryError, ResolveEndpointError, RouteBuildError, ConfigurationError, LeadershipLostError, LeaderStateTooLargeError } from './errors.ts';
export { LEADER_STATE_MAX_BYTES, type JsonValue, type LeaderStateSlot } from './spi/leader-state.ts';
export { parseUri, maskUri, maskSecrets, resolveOptions, parseDuration, type OptionSchema, type ParsedUri } from './uri/index.ts';
export type { Logger } from './logging/logger.ts';
export { singleton, createClusterService, resolveClusterConfig, MemoryLockStore, FileLockStore, ElectorClusterService } from './cluster/index.ts';
export type { LeaderState } from './cluster/cluster-service.ts';
export type { ClusterService, ClusterView, ClusterMember, LeadershipEvent, LeadershipTerm, SingletonService, SingletonHandle, SingletonTerm, ClusterConfig, LockStore } from './cluster/index.ts';
export { CLUSTER_SERVICE, MasterComponent } from './components/master/master-component.ts';
export { MasterHeader } from './components/master/headers.ts';
export { HttpOperationFailedError, HttpRequestError } from './components/http/errors.ts';
export { HttpHeader } from './components/http/headers.ts';
export type { RouteFileEnvironment } from './cli/route-loader.ts';
