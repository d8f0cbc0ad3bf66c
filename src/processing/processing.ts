// The processing stage: applies `filters` and `enrich` to a decoded envelope. Untouched items keep
// their exact bytes; changed items get new bytes and a new length; dropped items are reported by
// rule and type. Built only when a rule is configured, so pass-through traffic never reaches it.
import type { Config } from '../config/schema.js';
import { Enricher } from './enrich.js';
import { type Envelope, type EnvelopeItem, createItem, parseEnvelope, serializeEnvelope } from '../core/envelope.js';
import { EVENT_ITEM_TYPES, EventView, type DropReason, Filters } from './filters.js';
import { applyEdits, scanObject } from './json-fields.js';

export interface DroppedItem {
  readonly reason: DropReason;
  readonly type: string;
}

/** What the request itself tells about the client. */
export interface ClientFacts {
  /** The client's address, derived through server.trustProxy (read only when enrich.clientIp is on). */
  readonly ip: () => string | undefined;
  /** The request's User-Agent, for events that carry none of their own. */
  readonly userAgent: string | undefined;
}

export type ProcessingResult =
  /** Nothing matched: forward the original wire bytes. */
  | { readonly kind: 'unchanged'; readonly dropped: readonly DroppedItem[] }
  /** Items were dropped or changed: forward `body` (decoded). */
  | { readonly kind: 'changed'; readonly body: Buffer; readonly dropped: readonly DroppedItem[] }
  /** Every item was dropped: forward nothing. */
  | { readonly kind: 'emptied'; readonly dropped: readonly DroppedItem[] };

/**
 * Items that belong to the envelope's event and mean nothing without it (Relay's `requires_event`):
 * an event a filter drops takes them along, as Relay's inbound filters do.
 */
const EVENT_BOUND_ITEM_TYPES: ReadonlySet<string> = new Set(['attachment', 'form_data', 'user_report', 'unreal_report', 'profile']);

/** Moves the event-bound items from `kept` to `dropped`, under the rule that dropped their event. */
function takeAlongEventItems(kept: EnvelopeItem[], dropped: DroppedItem[], reason: DropReason): void {
  let write = 0;
  for (const item of kept) {
    if (EVENT_BOUND_ITEM_TYPES.has(item.type)) dropped.push({ reason, type: item.type });
    else kept[write++] = item;
  }
  kept.length = write;
}

export class Processor {
  readonly #filters: Filters;
  readonly #enricher: Enricher;

  private constructor(config: Pick<Config, 'filters' | 'enrich'>) {
    this.#filters = new Filters(config.filters);
    this.#enricher = new Enricher(config.enrich);
  }

  /** A processor for the configured rules, or undefined when there are none (the streaming fast path). */
  static create(config: Pick<Config, 'filters' | 'enrich'>): Processor | undefined {
    const processor = new Processor(config);
    return processor.#filters.isEmpty && processor.#enricher.isEmpty ? undefined : processor;
  }

  /** Throws TunnelError malformed_envelope when `decoded` is not a well-formed envelope. */
  process(decoded: Buffer, client: ClientFacts): ProcessingResult {
    const envelope = parseEnvelope(decoded);
    const dropped: DroppedItem[] = [];
    const kept: EnvelopeItem[] = [];
    let changed = false;
    let clientIp: string | undefined;
    for (const item of envelope.items) {
      const result = this.#processItem(item, client, () => (clientIp ??= client.ip()));
      if (typeof result === 'string') {
        dropped.push({ reason: result, type: item.type });
        changed = true;
      } else {
        kept.push(result);
        if (result !== item) changed = true;
      }
    }
    if (!changed) return { kind: 'unchanged', dropped };
    const eventDrop = dropped.find((item) => EVENT_ITEM_TYPES.has(item.type) && item.reason.startsWith('dropEvents.'));
    if (eventDrop) takeAlongEventItems(kept, dropped, eventDrop.reason);
    if (kept.length === 0) return { kind: 'emptied', dropped };
    const next: Envelope = { ...envelope, items: kept };
    return { kind: 'changed', body: serializeEnvelope(next), dropped };
  }

  /** The item as it goes on (itself when untouched), or the rule that drops it. */
  #processItem(item: EnvelopeItem, client: ClientFacts, clientIp: () => string | undefined): EnvelopeItem | DropReason {
    if (this.#filters.dropsType(item.type)) return 'dropItemTypes';
    if (!EVENT_ITEM_TYPES.has(item.type)) return item;
    const inspect = this.#filters.inspectsEvents;
    if (!inspect && this.#enricher.isEmpty) return item;
    const object = scanObject(item.payload);
    // A payload that is not a JSON object is Sentry's to reject; the tunnel passes it on untouched.
    if (!object) return item;
    if (inspect) {
      const field = this.#filters.matchEvent(new EventView(object, item.type, client.userAgent));
      if (field) return `dropEvents.${field}`;
    }
    const edits = this.#enricher.edits(object, this.#enricher.clientIp ? clientIp() : undefined);
    if (edits.length === 0) return item;
    return createItem(item.header, applyEdits(item.payload, edits));
  }
}
