import { type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";

/** A time that may be missing, as an optional Timestamp field: unset (left out of JSON) when null. */
export function optionalTimestamp(value: Date | null | undefined): Timestamp | undefined {
  return value == null ? undefined : timestampFromDate(value);
}
