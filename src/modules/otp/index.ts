export { createOtpActivities, type OtpActivities } from "./otp.activities.js";
export { invalidCode, type OtpOptions, OtpService, type OtpWorkflows, type Verdict } from "./otp.service.js";
