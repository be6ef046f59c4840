// Types of scf-sdk (CommonJS entry). The ES module entry (index.d.mts) re-exports these.

/** The context every handler receives (the platform's eleven fields, plus Node's methods). */
export interface Context {
  /** Memory size of the function in MB. */
  memory_limit_in_mb: number;
  /** Execution timeout of the function in milliseconds. */
  time_limit_in_ms: number;
  /** Id of this invocation. */
  request_id: string;
  /** The function's environment as a JSON object, encoded as a string. */
  environment: string;
  /** The function's environment as `K=V` pairs joined by `;`. */
  environ: string;
  /** Version of the function (`$LATEST` unless published). */
  function_version: string;
  function_name: string;
  namespace: string;
  tencentcloud_region: string;
  tencentcloud_appid: string;
  tencentcloud_uin: string;
  /** Milliseconds left before the platform times the invocation out. */
  getRemainingTimeInMillis(): number;
  /**
   * Callback handlers only: when true (the default) `callback(null, result)` is answered once the event
   * loop is empty; when false it is answered at once.
   */
  callbackWaitsForEmptyEventLoop: boolean;
  /** Answers with `result` at once. */
  succeed(result?: unknown): void;
  /** Answers with a HandledError at once. */
  fail(error?: unknown): void;
  /** `done(error)` fails, `done(null, result)` succeeds, at once. */
  done(error?: unknown, result?: unknown): void;
}

/** The callback of a callback-style handler. */
export type Callback<TResult = unknown> = (error?: unknown, result?: TResult) => void;

/** An async (promise) handler: resolve with the result, reject/throw for an UnhandledError. */
export type AsyncHandler<TEvent = any, TResult = unknown> = (event: TEvent, context: Context) => Promise<TResult>;

/** A callback handler (three parameters). */
export type CallbackHandler<TEvent = any, TResult = unknown> = (
  event: TEvent,
  context: Context,
  callback: Callback<TResult>,
) => void;

/** A synchronous handler: its return value is the result. */
export type SyncHandler<TEvent = any, TResult = unknown> = (event: TEvent, context: Context) => TResult;

/** Any handler form scf-shim accepts. */
export type Handler<TEvent = any, TResult = unknown> =
  | AsyncHandler<TEvent, TResult>
  | CallbackHandler<TEvent, TResult>
  | SyncHandler<TEvent, TResult>;

// ---- trigger events --------------------------------------------------------------------------------------
// The same description as the Rust types of scf_protocol::events (docs/events.md): an optional property may
// be absent, every other is always there. test/events.test.js type-checks the samples the Rust types
// generate against these interfaces with `tsc --strict`.

/** `requestContext.identity`: `secretId` is there for an API protected by a key pair. */
export interface APIGatewayIdentity {
  secretId?: string;
}

/** `requestContext` of an API Gateway event: the gateway's side of the request. */
export interface APIGatewayRequestContext {
  /** The gateway service's id (`service-…`). */
  serviceId: string;
  /** The API's declared path (`/hello/{name}`). */
  path: string;
  /** The API's declared method (`ANY` for every method). */
  httpMethod: string;
  requestId: string;
  identity: APIGatewayIdentity;
  sourceIp: string;
  /** `release`, `prepub` or `test`. */
  stage: string;
  websocketEnable?: boolean;
}

/** One value of `queryString`: `a=1` as `'1'`, a repeated key as a list, a key without `=` as `true`. */
export type QueryValue = string | string[] | boolean;

/** API Gateway trigger (integration request), invoked synchronously. */
export interface APIGatewayEvent {
  requestContext: APIGatewayRequestContext;
  headers: Record<string, string>;
  /** The body as text (base64 when `isBase64Encoded`); absent for a request without one. */
  body?: string;
  pathParameters?: Record<string, string>;
  queryStringParameters?: Record<string, string>;
  headerParameters?: Record<string, string>;
  stageVariables?: Record<string, string>;
  /** The request's full path. */
  path: string;
  /** The request's whole query. */
  queryString: Record<string, QueryValue>;
  httpMethod: string;
  isBase64Encoded?: boolean;
}

/** One header of an integration response: a list sends the header once per value. */
export type HeaderValue = string | string[];

/** What an event function behind API Gateway (or CLB) returns with integrated responses. */
export interface APIGatewayResponse {
  /** Whether `body` is base64 of binary content; absent means false. */
  isBase64Encoded?: boolean;
  statusCode: number;
  headers: Record<string, HeaderValue>;
  body: string;
}

/** Timer trigger, invoked asynchronously. */
export interface TimerEvent {
  /** `'Timer'`. */
  Type: string;
  TriggerName: string;
  /** When it fired: UTC ISO 8601 (`2024-06-10T08:00:00Z`). */
  Time: string;
  /** The trigger's configured message (its `argument`). */
  Message: string;
}

/** `cos.cosObject`: `key` is `/<appid>/<bucket>/<key>`, `size` in bytes, `vid` the version id. */
export interface COSObject {
  url: string;
  meta: Record<string, string>;
  vid: string;
  key: string;
  size: number;
}

/** `cos.cosBucket`: `region` in COS's short form (`gz`), `name` without the appid. */
export interface COSBucket {
  region: string;
  name: string;
  appid: string;
}

/** `cos` of a record: the object and its bucket. */
export interface COSEntity {
  cosSchemaVersion: string;
  cosObject: COSObject;
  cosBucket: COSBucket;
  cosNotificationId: string;
}

/** `event` of a record: `eventName` (`cos:ObjectCreated:Put`, …), `eventTime` in Unix seconds. */
export interface COSEventInfo {
  eventName: string;
  eventVersion: string;
  eventTime: number;
  eventSource: string;
  requestParameters: { requestSourceIP: string; requestHeaders: Record<string, string> };
  eventQueue: string;
  reservedInfo: string;
  reqid: number;
}

/** COS (object storage) trigger, invoked asynchronously: one record per object created or deleted. */
export interface COSEvent {
  Records: Array<{ cos: COSEntity; event: COSEventInfo }>;
}

/** `CMQ` of a record. `msgTag` is the tags joined into one string (`'tag1,tag2'`), or a list. */
export interface CMQMessage {
  type: string;
  topicOwner: number;
  topicName: string;
  subscriptionName: string;
  publishTime: string;
  msgId: string;
  requestId: string;
  msgBody: string;
  msgTag: string | string[];
}

/** CMQ topic trigger, invoked asynchronously. */
export interface CMQEvent {
  Records: Array<{ CMQ: CMQMessage }>;
}

/** `Ckafka` of a record: `msgKey` is `'None'` for a message without a key. */
export interface CKafkaMessage {
  topic: string;
  partition: number;
  offset: number;
  msgKey: string;
  msgBody: string;
}

/** CKafka trigger, invoked synchronously: a batch of messages from one topic. */
export interface CKafkaEvent {
  Records: Array<{ Ckafka: CKafkaMessage }>;
}

/**
 * CLB (load balancer) trigger, invoked synchronously: the request's headers (the method and path are the
 * `X-Method` and `X-Uri` headers when the listener adds them) and its payload.
 */
export interface CLBEvent {
  headers: Record<string, string>;
  /** The body: a JSON body as its document, else the text; base64 when `isBase64Encoded`. */
  payload?: unknown;
  isBase64Encoded?: boolean;
}

/** CLB takes the same integrated response as API Gateway. */
export type CLBResponse = APIGatewayResponse;

/** `websocket.action`. */
export type WebSocketAction = 'connecting' | 'closing' | 'data send' | 'data recv';

/**
 * `requestContext` of a WebSocket connection request: API Gateway's, but Tencent's documentation names the
 * service `serviceName` and its Go type `serviceId`: either may be there.
 */
export interface WebSocketRequestContext extends Omit<APIGatewayRequestContext, 'serviceId'> {
  serviceId?: string;
  serviceName?: string;
}

/** `websocket` of a connection request (what the client asks for) or of its answer (what is chosen). */
export interface WebSocketConnection {
  action: WebSocketAction;
  secConnectionID: string;
  secWebSocketProtocol?: string;
  secWebSocketExtensions?: string;
}

/** API Gateway WebSocket, the registration function's event: a client asks to connect. */
export interface WebSocketConnectEvent {
  requestContext: WebSocketRequestContext;
  websocket: WebSocketConnection;
}

/** What the registration function answers: `errNo` 0 accepts the connection. */
export interface WebSocketConnectResponse {
  errNo: number;
  errMsg: string;
  websocket: WebSocketConnection;
}

/** `websocket` of a transfer or cleanup event: `dataType` and `data` are absent when closing. */
export interface WebSocketMessage {
  action: WebSocketAction;
  secConnectionID: string;
  /** `'text'` or `'binary'`. */
  dataType?: string;
  /** The text, or base64 of the binary data. */
  data?: string;
}

/** API Gateway WebSocket, the transfer (`'data send'`) and cleanup (`'closing'`) functions' event. */
export interface WebSocketMessageEvent {
  websocket: WebSocketMessage;
}

// ---- errors -------------------------------------------------------------------------------------------------

/** errorType names of the taxonomy (see docs/errors.md; test/invoke.test.js checks this list against the core's). */
export type ErrorType =
  | 'HandledError'
  | 'UnhandledError'
  | 'MarshalError'
  | 'ConcurrencyLimit'
  | 'Timeout'
  | 'MemoryLimitExceeded'
  | 'FunctionNotFound'
  | 'InvalidParameter'
  | 'HandlerNotFound'
  | 'ProcessExit'
  | 'ModuleNotFound'
  | 'MalformedHandler'
  | 'HandlerNotCallable'
  | 'SyntaxError'
  | 'InitError'
  | 'InitTimeout'
  | 'BootstrapError'
  | 'PortBindingFailed'
  | 'InvalidEvent'
  | 'RequestTooLarge'
  | 'ResponseTooLarge'
  | 'InternalError';

/** errorType → statusCode, from the core (the add-on). */
export declare const ErrorKinds: Readonly<Record<ErrorType, number>>;

/** What a local invocation gave, as the caller would see it. */
export interface InvokeOutcome {
  ok: boolean;
  statusCode: number;
  /** The caller-visible body: the JSON result, or the canonical error body. */
  body: string;
  requestId: string;
  errorType?: ErrorType;
  errorMessage?: string;
  stackTrace?: string;
}

/** A failed local invocation. */
export declare class InvokeError extends Error {
  readonly errorType: ErrorType;
  readonly statusCode: number;
  readonly errorMessage: string;
  readonly stackTrace: string;
  readonly requestId: string;
  /** The canonical caller-visible error body. */
  readonly body: string;
}

/** Context fields for a local invocation (every field optional). */
export type ContextFields = Partial<
  Omit<Context, 'getRemainingTimeInMillis' | 'callbackWaitsForEmptyEventLoop' | 'succeed' | 'fail' | 'done'>
>;

export interface InvokeOptions {
  /** Where a handler string is resolved (default: the working directory). */
  codeRoot?: string;
  /** The execution timeout (default: context.time_limit_in_ms, 3000): past it → Timeout 433. */
  timeoutMs?: number;
  /** The event as raw text (to test a non-JSON event → InvalidEvent 400). */
  eventText?: string;
}

/**
 * Runs a handler once, locally, with production's marshalling and error classification. Resolves to the
 * result as the caller decodes it; rejects with an {@link InvokeError}.
 * @param handler a function, or a handler string such as "index.main_handler" (resolved from options.codeRoot)
 */
export declare function invoke<TResult = any>(
  handler: Handler | string,
  event?: unknown,
  context?: ContextFields,
  options?: InvokeOptions,
): Promise<TResult>;

/** Like {@link invoke}, but resolves to the outcome in every case. */
export declare function invokeRaw(
  handler: Handler | string,
  event?: unknown,
  context?: ContextFields,
  options?: InvokeOptions,
): Promise<InvokeOutcome>;

/** The context fields a local invocation gets, with `overrides` applied. */
export declare function defaultContext(overrides?: ContextFields): ContextFields;

/**
 * An API Gateway integration response: a string body is sent as text, a Buffer base64-encoded, anything
 * else as JSON (with a matching Content-Type unless one is given).
 */
export declare function apiGatewayResponse(
  body: unknown,
  options?: { statusCode?: number; headers?: Record<string, string> },
): APIGatewayResponse;
