//! The FHIR R4 type names, so nodes can carry a `&'static str` type without allocating.
//! Generated from the R4 StructureDefinitions (kind resource / complex-type / primitive-type).

/// Resource types, including the abstract `Resource` and `DomainResource`; sorted
/// (byte order) for binary search.
pub const RESOURCE_TYPES: &[&str] = &[
    "Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
    "AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
    "BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam",
    "CatalogEntry", "ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse",
    "ClinicalImpression", "CodeSystem", "Communication", "CommunicationRequest",
    "CompartmentDefinition", "Composition", "ConceptMap", "Condition", "Consent",
    "Contract", "Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse",
    "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric", "DeviceRequest",
    "DeviceUseStatement", "DiagnosticReport", "DocumentManifest", "DocumentReference",
    "DomainResource", "EffectEvidenceSynthesis", "Encounter", "Endpoint",
    "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare", "EventDefinition",
    "Evidence", "EvidenceVariable", "ExampleScenario", "ExplanationOfBenefit",
    "FamilyMemberHistory", "Flag", "Goal", "GraphDefinition", "Group", "GuidanceResponse",
    "HealthcareService", "ImagingStudy", "Immunization", "ImmunizationEvaluation",
    "ImmunizationRecommendation", "ImplementationGuide", "InsurancePlan", "Invoice",
    "Library", "Linkage", "List", "Location", "Measure", "MeasureReport", "Media",
    "Medication", "MedicationAdministration", "MedicationDispense", "MedicationKnowledge",
    "MedicationRequest", "MedicationStatement", "MedicinalProduct",
    "MedicinalProductAuthorization", "MedicinalProductContraindication",
    "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured",
    "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect", "MessageDefinition", "MessageHeader",
    "MolecularSequence", "NamingSystem", "NutritionOrder", "Observation",
    "ObservationDefinition", "OperationDefinition", "OperationOutcome", "Organization",
    "OrganizationAffiliation", "Parameters", "Patient", "PaymentNotice",
    "PaymentReconciliation", "Person", "PlanDefinition", "Practitioner", "PractitionerRole",
    "Procedure", "Provenance", "Questionnaire", "QuestionnaireResponse", "RelatedPerson",
    "RequestGroup", "ResearchDefinition", "ResearchElementDefinition", "ResearchStudy",
    "ResearchSubject", "Resource", "RiskAssessment", "RiskEvidenceSynthesis", "Schedule",
    "SearchParameter", "ServiceRequest", "Slot", "Specimen", "SpecimenDefinition",
    "StructureDefinition", "StructureMap", "Subscription", "Substance",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
    "SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification",
    "SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport",
    "TestScript", "ValueSet", "VerificationResult", "VisionPrescription",
];

/// Data types (primitive and complex), plus the `SimpleQuantity`/`MoneyQuantity` profiles.
pub const DATA_TYPES: &[&str] = &[
    "Address", "Age", "Annotation", "Attachment", "BackboneElement", "CodeableConcept",
    "Coding", "ContactDetail", "ContactPoint", "Contributor", "Count", "DataRequirement",
    "Distance", "Dosage", "Duration", "ElementDefinition", "Expression", "Extension",
    "HumanName", "Identifier", "MarketingStatus", "Meta", "Money", "MoneyQuantity",
    "Narrative", "ParameterDefinition", "Period", "Population", "ProdCharacteristic",
    "ProductShelfLife", "Quantity", "Range", "Ratio", "Reference", "RelatedArtifact",
    "SampledData", "Signature", "SimpleQuantity", "SubstanceAmount", "Timing",
    "TriggerDefinition", "UsageContext", "base64Binary", "boolean", "canonical", "code",
    "date", "dateTime", "decimal", "id", "instant", "integer", "markdown", "oid",
    "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid", "xhtml",
];
