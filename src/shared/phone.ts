import { type CountryCode, parsePhoneNumberFromString } from "libphonenumber-js/max";
import { invalid, missing } from "./errors.js";

/**
 * Normalises a phone number to E.164. Numbers without a country code take `defaultCountry`.
 * Anything that is not a valid number for its country is a validation error naming `field`.
 */
export function normalizePhoneNumber(input: string, defaultCountry: string, field: string): string {
  const trimmed = input.trim();
  if (trimmed === "") throw missing(field);
  const parsed = parsePhoneNumberFromString(trimmed, defaultCountry as CountryCode);
  if (parsed === undefined || !parsed.isValid()) {
    throw invalid(`${field} is not a valid phone number`);
  }
  return parsed.number;
}
