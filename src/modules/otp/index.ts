export { createOtpActivities, type OtpActivities } from "./otp.activities.js";
export { OtpRepository } from "./otp.repository.js";
export { invalidCode, OneTimePasswords, type OtpOptions, type OtpWorkflows, type Verdict } from "./otp.service.js";
export { OtpCodeEntity } from "./otp-code.entity.js";
