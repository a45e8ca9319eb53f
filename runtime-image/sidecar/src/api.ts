// The runtime API routes (protocol/src/runtime-api.ts), typed, over OperatorClient.
import { z } from "zod";
import {
  blobPutResponse,
  blobUrlsRequest,
  blobUrlsResponse,
  childrenRequest,
  childrenResponse,
  codeLoadFailureRequest,
  failureRequest,
  heartbeatRequest,
  heartbeatResponse,
  leaseRequest,
  leaseResponse,
  progressRequest,
  registerRequest,
  registerResponse,
  resultRequest,
  stateValue,
  tailRequest,
  waitRequest,
  waitResponse,
} from "../../../protocol/index.js";
import type { OperatorClient, Reply } from "./operator-client.js";

type In<T extends z.ZodType> = z.input<T>;
const ack = z.unknown();
const seg = encodeURIComponent;
/** Extra time a long-poll is given beyond its wait before it counts as lost. */
const POLL_MARGIN_MS = 15_000;
/**
 * Per try of a request state read or write, which the worker waits on: a connection to an
 * operator replica on a lost node answers nothing, so a try gives up soon and the retry reaches
 * the replica that took over (two 30 s tries used up the worker's whole wait).
 */
const STATE_TRY_MS = 8_000;

export class RuntimeApi {
  constructor(readonly client: OperatorClient) {}

  register(body: In<typeof registerRequest>): Promise<Reply<z.infer<typeof registerResponse>>> {
    return this.client.json("POST", "/register", body, registerResponse);
  }
  codeLoadFailure(body: In<typeof codeLoadFailureRequest>): Promise<Reply<unknown>> {
    return this.client.json("POST", "/code-load-failure", body, ack);
  }
  lease(body: In<typeof leaseRequest>, retries?: number): Promise<Reply<z.infer<typeof leaseResponse>>> {
    return this.client.json("POST", "/lease", body, leaseResponse, {
      timeoutMs: (body.waitMs ?? 0) + POLL_MARGIN_MS,
      ...(retries === undefined ? {} : { retries }),
    });
  }
  /** One try: the next beat replaces a lost one. */
  heartbeat(body: In<typeof heartbeatRequest>, retries = 2): Promise<Reply<z.infer<typeof heartbeatResponse>>> {
    return this.client.json("POST", "/heartbeat", body, heartbeatResponse, { retries });
  }
  result(call: string, body: In<typeof resultRequest>): Promise<Reply<unknown>> {
    return this.client.json("POST", `/calls/${seg(call)}/result`, body, ack);
  }
  failure(call: string, body: In<typeof failureRequest>): Promise<Reply<unknown>> {
    return this.client.json("POST", `/calls/${seg(call)}/failure`, body, ack);
  }
  tail(call: string, body: In<typeof tailRequest>): Promise<Reply<unknown>> {
    return this.client.json("POST", `/calls/${seg(call)}/tail`, body, ack);
  }
  children(call: string, body: In<typeof childrenRequest>): Promise<Reply<z.infer<typeof childrenResponse>>> {
    return this.client.json("POST", `/calls/${seg(call)}/children`, body, childrenResponse);
  }
  wait(body: In<typeof waitRequest>): Promise<Reply<z.infer<typeof waitResponse>>> {
    return this.client.json("POST", "/wait", body, waitResponse, { timeoutMs: body.waitMs + POLL_MARGIN_MS });
  }
  progress(call: string, body: In<typeof progressRequest>, retries?: number): Promise<Reply<unknown>> {
    return this.client.json(
      "POST",
      `/calls/${seg(call)}/progress`,
      body,
      ack,
      retries === undefined ? {} : { retries },
    );
  }
  stateGet(request: string, key: string): Promise<Reply<z.infer<typeof stateValue>>> {
    return this.client.json("GET", `/requests/${seg(request)}/state/${seg(key)}`, undefined, stateValue, {
      timeoutMs: STATE_TRY_MS,
    });
  }
  statePut(request: string, key: string, body: In<typeof stateValue>): Promise<Reply<unknown>> {
    return this.client.json("PUT", `/requests/${seg(request)}/state/${seg(key)}`, body, ack, {
      timeoutMs: STATE_TRY_MS,
    });
  }
  /** `call`: a call assigned to this pod; the blob is filed under its request. */
  blobPut(call: string, data: Buffer): Promise<Reply<z.infer<typeof blobPutResponse>>> {
    return this.client.json("PUT", `/blobs?call=${seg(call)}`, data, blobPutResponse, {
      contentType: "application/octet-stream",
    });
  }
  /** Presigned URLs to move blob bytes to and from the store directly (directBlobs at register). */
  blobUrls(body: In<typeof blobUrlsRequest>): Promise<Reply<z.infer<typeof blobUrlsResponse>>> {
    return this.client.json("POST", "/blob-urls", body, blobUrlsResponse);
  }
  blobGet(ref: string): Promise<Reply<Buffer>> {
    return this.client.bytes("GET", `/blobs/${ref.split("/").map(seg).join("/")}`, undefined);
  }
}
