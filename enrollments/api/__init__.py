"""The REST API: the enrollment listing and bulk enroll (README: REST API),
whose request and answer formats are contracts with existing integrations."""
