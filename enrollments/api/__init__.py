"""The REST API: the enrollment listing and bulk enroll of DESIGN.md (REST API),
whose request and answer formats are contracts with existing integrations."""
