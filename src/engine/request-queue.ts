// A scheduler's waiting queue: arrival order, preempted requests put back at the head, and any
// request taken out wherever it stands in O(1). An abort removes requests from the middle of the
// queue; a scan per removal made aborting a queue of n requests cost O(n²).
import type { Request } from "./request.ts";

interface Node {
  request: Request;
  previous: Node | null;
  next: Node | null;
}

export class RequestQueue implements Iterable<Request> {
  /** The queue's nodes by request id: what makes has() and remove() O(1). */
  private readonly nodes = new Map<string, Node>();
  private head: Node | null = null;
  private tail: Node | null = null;

  get length(): number {
    return this.nodes.size;
  }

  has(requestId: string): boolean {
    return this.nodes.has(requestId);
  }

  /** The head of the queue, left in place. */
  peek(): Request | undefined {
    return this.head?.request;
  }

  /** Joins at the back (a new arrival). */
  push(request: Request): void {
    const node = this.adopt(request);
    node.previous = this.tail;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
  }

  /** Joins at the head (a preempted request, first to resume). */
  pushFront(request: Request): void {
    const node = this.adopt(request);
    node.next = this.head;
    if (this.head) this.head.previous = node;
    else this.tail = node;
    this.head = node;
  }

  /** Takes the head out. */
  shift(): Request | undefined {
    return this.head ? this.unlink(this.head) : undefined;
  }

  /** Takes the request out wherever it stands; undefined if it is not queued. */
  remove(requestId: string): Request | undefined {
    const node = this.nodes.get(requestId);
    return node ? this.unlink(node) : undefined;
  }

  *[Symbol.iterator](): Iterator<Request> {
    for (let node = this.head; node; node = node.next) yield node.request;
  }

  private adopt(request: Request): Node {
    if (this.nodes.has(request.requestId)) throw new Error(`request ${request.requestId} is already queued`);
    const node: Node = { request, previous: null, next: null };
    this.nodes.set(request.requestId, node);
    return node;
  }

  private unlink(node: Node): Request {
    if (node.previous) node.previous.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.previous = node.previous;
    else this.tail = node.previous;
    this.nodes.delete(node.request.requestId);
    return node.request;
  }
}
