"""The repository's static web catalogue: packages, evidence, advisories and images."""
