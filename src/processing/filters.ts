// The `filters` rules compiled once: which item types are dropped outright, and which event or
// transaction items are dropped because a field matches. Any field of a `dropEvents` rule matching is
// enough (the fields are alternatives: bots OR test environments OR noisy messages).
import type { Config } from '../config/schema.js';
import { type JsonObjectFields, readField, readStringField } from './json-fields.js';
import { type Matcher, compilePatterns } from './patterns.js';

export const EVENT_FIELDS = ['message', 'exceptionType', 'environment', 'release', 'level', 'userAgent'] as const;
export type EventField = (typeof EVENT_FIELDS)[number];

/** The rule that dropped an item, as counted in metrics: the config key that matched. */
export type DropReason = 'dropItemTypes' | `dropEvents.${EventField}`;

/** Item types dropEvents looks into: both are events in Sentry's data model. */
export const EVENT_ITEM_TYPES: ReadonlySet<string> = new Set(['event', 'transaction']);

interface EventRule {
  readonly field: EventField;
  readonly matches: Matcher;
}

export class Filters {
  readonly #dropTypes: ReadonlySet<string>;
  readonly #eventRules: readonly EventRule[];

  constructor(filters: Config['filters']) {
    const dropTypes = new Set<string>();
    const eventRules: EventRule[] = [];
    for (const filter of filters) {
      for (const type of filter.dropItemTypes ?? []) dropTypes.add(type);
      if (!filter.dropEvents) continue;
      for (const field of EVENT_FIELDS) {
        const matches = compilePatterns(filter.dropEvents[field]);
        if (matches) eventRules.push({ field, matches });
      }
    }
    this.#dropTypes = dropTypes;
    this.#eventRules = eventRules;
  }

  get isEmpty(): boolean {
    return this.#dropTypes.size === 0 && this.#eventRules.length === 0;
  }

  get inspectsEvents(): boolean {
    return this.#eventRules.length > 0;
  }

  dropsType(type: string): boolean {
    return this.#dropTypes.has(type);
  }

  /** The first field of a rule that matches the event, if any. */
  matchEvent(event: EventView): EventField | undefined {
    for (const rule of this.#eventRules) {
      if (event.values(rule.field).some(rule.matches)) return rule.field;
    }
    return undefined;
  }
}

/** The strings of one event or transaction the rules look at, read on demand from its bytes. */
export class EventView {
  readonly #cache = new Map<EventField, readonly string[]>();

  constructor(
    private readonly object: JsonObjectFields,
    private readonly itemType: string,
    private readonly requestUserAgent: string | undefined,
  ) {}

  values(field: EventField): readonly string[] {
    let values = this.#cache.get(field);
    if (!values) {
      values = this.#read(field);
      this.#cache.set(field, values);
    }
    return values;
  }

  #read(field: EventField): string[] {
    const { object } = this;
    switch (field) {
      case 'environment':
      case 'release':
        return strings(readStringField(object, field));
      case 'level':
        // Sentry treats an event without a level as an error, a transaction as info.
        return strings(readStringField(object, 'level') ?? (this.itemType === 'transaction' ? 'info' : 'error'));
      case 'userAgent':
        return strings(userAgentOf(readField(object, 'request')) ?? this.requestUserAgent);
      case 'exceptionType':
        return exceptions(readField(object, 'exception')).flatMap((exception) => strings(exception.type));
      case 'message':
        return [
          ...messageStrings(readField(object, 'message')),
          ...messageStrings(readField(object, 'logentry')),
          ...exceptions(readField(object, 'exception')).flatMap(exceptionMessages),
        ];
    }
  }
}

interface ExceptionValue {
  readonly type?: unknown;
  readonly value?: unknown;
}

function strings(...values: unknown[]): string[] {
  return values.filter((value): value is string => typeof value === 'string');
}

/** `message` is a string or a logentry object; `logentry` is `{ formatted, message }`. */
function messageStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (isObject(value)) return strings(value.formatted, value.message);
  return [];
}

/** `exception` is `{ values: [...] }`, or a bare list in older SDKs. */
function exceptions(value: unknown): ExceptionValue[] {
  const list = isObject(value) ? value.values : value;
  return Array.isArray(list) ? list.filter(isObject) : [];
}

/** Sentry shows an exception as "Type: value"; a rule may be written against either form. */
function exceptionMessages(exception: ExceptionValue): string[] {
  const { type, value } = exception;
  if (typeof value !== 'string') return [];
  return typeof type === 'string' ? [value, `${type}: ${value}`] : [value];
}

/** request.headers is an object or a list of [name, value] pairs; names are case-insensitive. */
function userAgentOf(request: unknown): string | undefined {
  if (!isObject(request)) return undefined;
  const headers = request.headers;
  const pairs: unknown[] = Array.isArray(headers) ? headers : isObject(headers) ? Object.entries(headers) : [];
  for (const pair of pairs) {
    if (Array.isArray(pair) && typeof pair[0] === 'string' && pair[0].toLowerCase() === 'user-agent' && typeof pair[1] === 'string') {
      return pair[1];
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
