export { AuthFailureLimiter } from "./auth-failure-limiter.js";
export { type RateDecision, RateLimiter } from "./rate-limiter.js";
