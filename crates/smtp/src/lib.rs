//! The before-queue SMTP proxy and delivery to the upstream MTA.
