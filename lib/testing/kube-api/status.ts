/**
 * metav1.Status bodies, shaped exactly as the apiserver writes them (apimachinery api/errors), so
 * that a client parsing `reason`, `code` and `details` cannot tell the test server from a real one.
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  /** Absent on the Success body a DELETE returns (Go's omitempty on a zero code). */
  code?: number;
}

/** Which resource an error is about: the plural resource and its API group ('' for core). */
export interface GroupResource {
  group: string;
  resource: string;
}

/** A failure the server answers with a Status body. Thrown inside request handling only. */
export class ApiError extends Error {
  readonly status: Status;

  constructor(status: Status) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
    this.name = 'ApiError';
    this.status = status;
  }

  get code(): number {
    return this.status.code ?? 500;
  }
}

/** `leases.coordination.k8s.io` or, for the core group, `configmaps`. */
export function qualifiedResource(gr: GroupResource): string {
  return gr.group ? `${gr.resource}.${gr.group}` : gr.resource;
}

function failure(code: number, reason: string | undefined, message: string, details?: StatusDetails): Status {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message };
  if (reason !== undefined) status.reason = reason;
  if (details !== undefined) status.details = details;
  status.code = code;
  return status;
}

function detailsFor(gr: GroupResource, name?: string): StatusDetails {
  const details: StatusDetails = {};
  if (name !== undefined && name !== '') details.name = name;
  if (gr.group) details.group = gr.group;
  details.kind = gr.resource;
  return details;
}

export function notFound(gr: GroupResource, name: string): ApiError {
  return new ApiError(failure(404, 'NotFound', `${qualifiedResource(gr)} "${name}" not found`, detailsFor(gr, name)));
}

export function alreadyExists(gr: GroupResource, name: string): ApiError {
  return new ApiError(failure(409, 'AlreadyExists', `${qualifiedResource(gr)} "${name}" already exists`, detailsFor(gr, name)));
}

export function conflict(gr: GroupResource, name: string, why: string): ApiError {
  return new ApiError(
    failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(gr)} "${name}": ${why}`, detailsFor(gr, name)),
  );
}

export const MODIFIED_CONFLICT =
  'the object has been modified; please apply your changes to the latest version and try again';

/** The storage-layer precondition failure (etcd3 store), as DELETE preconditions and PUT-with-uid report it. */
export function preconditionConflict(gr: GroupResource, namespace: string, name: string, what: string): ApiError {
  const key = `/registry/${gr.group ? `${gr.group}/` : ''}${gr.resource}/${namespace}/${name}`;
  return conflict(
    gr,
    name,
    `StorageError: invalid object, Code: 4, Key: ${key}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: ${what}`,
  );
}

/** One field error in a 422, as field.Error renders it. */
export interface FieldError {
  type: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden' | 'FieldValueNotSupported';
  field: string;
  /** The offending value, rendered the way Go's %v would render it (numbers bare, strings quoted). */
  value?: unknown;
  detail: string;
}

function renderFieldError(e: FieldError): string {
  switch (e.type) {
    case 'FieldValueInvalid':
      return `Invalid value: ${renderValue(e.value)}: ${e.detail}`;
    case 'FieldValueRequired':
      return `Required value${e.detail ? `: ${e.detail}` : ''}`;
    case 'FieldValueForbidden':
      return `Forbidden${e.detail ? `: ${e.detail}` : ''}`;
    case 'FieldValueNotSupported':
      return `Unsupported value: ${renderValue(e.value)}${e.detail ? `: ${e.detail}` : ''}`;
  }
}

function renderValue(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * 422 Invalid. `subject` is what the message and `details.kind` name: the Kind for validation
 * failures (`Lease.coordination.k8s.io "x" is invalid`), the plural resource for the
 * resourceVersion-required failure, as the apiserver does.
 */
export function invalid(subject: { group: string; kind: string }, name: string, errors: FieldError[]): ApiError {
  const qualified = subject.group ? `${subject.kind}.${subject.group}` : subject.kind;
  const rendered = errors.map((e) => `${e.field}: ${renderFieldError(e)}`);
  const summary = rendered.length === 1 ? rendered[0] : `[${rendered.join(', ')}]`;
  const details: StatusDetails = {};
  if (name) details.name = name;
  if (subject.group) details.group = subject.group;
  details.kind = subject.kind;
  details.causes = errors.map((e) => ({ reason: e.type, message: renderFieldError(e), field: e.field }));
  return new ApiError(failure(422, 'Invalid', `${qualified} "${name}" is invalid: ${summary}`, details));
}

export function badRequest(message: string): ApiError {
  return new ApiError(failure(400, 'BadRequest', message));
}

/** 500 with no reason and no details, as the etcd3 store reports "resourceVersion should not be set". */
export function internalNoReason(message: string): ApiError {
  return new ApiError(failure(500, undefined, message));
}

export function internalError(message: string): ApiError {
  return new ApiError(
    failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }),
  );
}

export function unauthorized(): ApiError {
  return new ApiError(failure(401, 'Unauthorized', 'Unauthorized'));
}

export function forbidden(
  gr: GroupResource,
  subresource: string | undefined,
  name: string | undefined,
  user: string,
  verb: string,
  namespace: string | undefined,
): ApiError {
  const resource = subresource ? `${gr.resource}/${subresource}` : gr.resource;
  const subject = name ? `${qualifiedResource(gr)} "${name}"` : qualifiedResource(gr);
  const where = namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope';
  const message = `${subject} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${gr.group}"${where}`;
  return new ApiError(failure(403, 'Forbidden', message, detailsFor(gr, name)));
}

export function expired(message: string): ApiError {
  return new ApiError(failure(410, 'Expired', message));
}

export function methodNotAllowed(): ApiError {
  return new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}));
}

export function pathNotFound(): ApiError {
  return new ApiError(failure(404, 'NotFound', 'the server could not find the requested resource', {}));
}

export function unsupportedMediaType(accepted: readonly string[]): ApiError {
  return new ApiError(
    failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
    ),
  );
}

export function requestEntityTooLarge(limit: number): ApiError {
  return new ApiError(failure(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`));
}

const REASON_BY_CODE: Record<number, string> = {
  429: 'TooManyRequests',
  500: 'InternalError',
  502: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** An injected fault answer: the Status a real apiserver (or the proxy in front of it) would give for that code. */
export function injectedFailure(code: number): Status {
  const reason = REASON_BY_CODE[code] ?? 'InternalError';
  const message =
    code === 429
      ? 'Too many requests, please try again later.'
      : code === 503
        ? 'the server is currently unable to handle the request (injected fault)'
        : code === 504
          ? 'the server was unable to return a response in the time allotted (injected fault)'
          : 'Internal error occurred: injected fault';
  const details: StatusDetails = code === 429 ? { retryAfterSeconds: 1 } : { causes: [{ message: 'injected fault' }] };
  return failure(code, reason, message, details);
}

export function successStatus(details: StatusDetails): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}
