# Enrollment codes (generation batches, codes, redemptions) arrive with the codes feature.
