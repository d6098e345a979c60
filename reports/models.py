# Report tasks (may_enroll, enrolled_profiles, codes) arrive with the reports feature.
