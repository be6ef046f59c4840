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

/** API Gateway trigger (integration request). */
export interface APIGatewayEvent {
  requestContext: {
    serviceId: string;
    path: string;
    httpMethod: string;
    requestId: string;
    identity?: { secretId?: string; [k: string]: unknown };
    sourceIp: string;
    stage: string;
    [k: string]: unknown;
  };
  headers: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
  pathParameters: Record<string, string>;
  queryStringParameters: Record<string, string>;
  headerParameters: Record<string, string>;
  stageVariables: Record<string, string>;
  path: string;
  queryString: Record<string, string | string[]>;
  httpMethod: string;
}

/** What an API Gateway-triggered function returns (integration response). */
export interface APIGatewayResponse {
  isBase64Encoded: boolean;
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** COS (object storage) trigger. */
export interface COSEvent {
  Records: Array<{
    cos: {
      cosSchemaVersion: string;
      cosObject: {
        url: string;
        meta: Record<string, string>;
        vid: string;
        key: string;
        size: number;
      };
      cosBucket: { region: string; name: string; appid: string };
      cosNotificationId: string;
    };
    event: {
      eventName: string;
      eventVersion: string;
      eventTime: number;
      eventSource: string;
      requestParameters: { requestSourceIP: string; requestHeaders: Record<string, string> };
      eventQueue: string;
      reservedInfo: string;
      reqid: number;
    };
  }>;
}

/** Timer trigger. */
export interface TimerEvent {
  Type: 'Timer';
  TriggerName: string;
  /** ISO-8601 time of the trigger. */
  Time: string;
  /** The trigger's additional message. */
  Message: string;
}

/** CMQ topic trigger. */
export interface CMQEvent {
  Records: Array<{
    CMQ: {
      type: 'topic' | string;
      topicOwner: number;
      topicName: string;
      subscriptionName: string;
      publishTime: string;
      msgId: string;
      requestId: string;
      msgBody: string;
      msgTag: string[] | string;
    };
  }>;
}

/** CKafka trigger. */
export interface CKafkaEvent {
  Records: Array<{
    Ckafka: {
      topic: string;
      partition: number;
      offset: number;
      msgKey: string;
      msgBody: string;
    };
  }>;
}

/** CLB (load balancer) trigger. */
export interface CLBEvent {
  headers: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
  httpMethod: string;
  path: string;
  queryString?: Record<string, string | string[]>;
  requestContext?: Record<string, unknown>;
  [k: string]: unknown;
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
