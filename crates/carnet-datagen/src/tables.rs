//! Vocabularies: names, places, and the clinical codes the generator draws from.

pub const FAMILY: &[&str] = &[
    "Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "Gagné",
    "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Paquette", "Girard", "Simard",
    "Boucher", "Caron", "Beaulieu", "Cloutier", "Dubé", "Poirier", "Fournier", "Lapointe", "Leclerc",
    "Lefebvre", "Poulin", "Thibault", "St-Pierre", "Nadeau", "Martin", "Landry", "Martel", "Bédard",
    "Grenier", "Lessard", "Bernier", "Richard", "Michaud", "Hébert", "Desjardins", "Couture", "Turcotte",
    "Lachance", "Parent", "Blais", "Gosselin", "Savard", "Proulx", "Beaudoin", "Demers", "Perron",
    "Boudreau", "Mercier", "Légaré", "Frenette", "Émond", "Thériault", "Larouche", "Brassard", "Vézina",
    "Giroux", "Tétreault", "Ménard", "Champagne", "Béland", "Côté-Rioux",
];

pub const GIVEN_FEMALE: &[&str] = &[
    "Marie", "Élise", "Geneviève", "Nathalie", "Isabelle", "Julie", "Mélanie", "Chloé", "Léa", "Émilie",
    "Sophie", "Josée", "Hélène", "Françoise", "Thérèse", "Céline", "Andrée", "Noémie", "Rosalie", "Maude",
    "Annie", "Ève", "Mégane", "Laurence", "Gisèle", "Renée", "Sylvie", "Chantal", "Béatrice", "Zoé",
];

pub const GIVEN_MALE: &[&str] = &[
    "Jean", "Pierre", "Luc", "Marc", "François", "Éric", "Stéphane", "Mathieu", "Olivier", "Guillaume",
    "Sébastien", "Jérôme", "André", "Benoît", "Gaétan", "Réjean", "Gilles", "Normand", "Alexandre",
    "Félix", "Étienne", "Raphaël", "Noël", "Hugues", "Denis", "Yves", "Frédéric", "Jacques", "Léo", "Émile",
];

/// City, first postal district, telephone area code.
pub const CITIES: &[(&str, &str, &str)] = &[
    ("Montréal", "H2X", "514"),
    ("Montréal", "H3A", "514"),
    ("Montréal", "H1V", "514"),
    ("Québec", "G1R", "418"),
    ("Québec", "G1V", "418"),
    ("Laval", "H7N", "450"),
    ("Gatineau", "J8Y", "819"),
    ("Longueuil", "J4K", "450"),
    ("Sherbrooke", "J1H", "819"),
    ("Saguenay", "G7H", "418"),
    ("Lévis", "G6V", "418"),
    ("Trois-Rivières", "G8T", "819"),
    ("Terrebonne", "J6W", "450"),
    ("Rimouski", "G5L", "418"),
    ("Saint-Jérôme", "J7Z", "450"),
    ("Drummondville", "J2B", "819"),
];

pub const STREETS: &[&str] = &[
    "rue Saint-Denis", "boulevard René-Lévesque", "rue Sherbrooke", "avenue du Parc", "rue Saint-Jean",
    "chemin Sainte-Foy", "rue Principale", "boulevard des Forges", "rue King Ouest", "rue Racine",
    "avenue Laurier", "rue de l'Église", "boulevard Talbot", "rue Notre-Dame", "côte des Neiges",
];

pub const ORGANIZATIONS: &[&str] = &[
    "CIUSSS du Centre-Sud-de-l'Île-de-Montréal",
    "CHU de Québec – Université Laval",
    "CISSS de Laval",
    "CISSS de l'Outaouais",
    "CIUSSS de l'Estrie – CHUS",
    "CIUSSS du Saguenay–Lac-Saint-Jean",
    "CISSS de Chaudière-Appalaches",
    "CIUSSS de la Mauricie-et-du-Centre-du-Québec",
    "CISSS des Laurentides",
    "CISSS du Bas-Saint-Laurent",
    "GMF Clinique médicale Saint-Denis",
    "GMF des Deux-Rives",
];

/// A laboratory test: LOINC code and display, UCUM unit, reference range (either end
/// may be open), the population's mean and spread, and decimals reported.
#[derive(Debug, Clone, Copy)]
pub struct Lab {
    pub code: &'static str,
    pub display: &'static str,
    pub unit: &'static str,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub mean: f64,
    pub sd: f64,
    pub decimals: i32,
}

const fn lab(
    code: &'static str,
    display: &'static str,
    unit: &'static str,
    low: Option<f64>,
    high: Option<f64>,
    mean: f64,
    sd: f64,
    decimals: i32,
) -> Lab {
    Lab { code, display, unit, low, high, mean, sd, decimals }
}

/// Common laboratory tests in SI units, as Québec laboratories report them.
pub const LABS: &[Lab] = &[
    // Metabolic panel: 0..8
    lab("14749-6", "Glucose [Moles/volume] in Serum or Plasma", "mmol/L", Some(3.9), Some(6.1), 5.8, 1.4, 1),
    lab("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", Some(50.0), Some(110.0), 85.0, 25.0, 0),
    lab("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", Some(135.0), Some(145.0), 140.0, 3.0, 0),
    lab("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", Some(3.5), Some(5.0), 4.2, 0.4, 1),
    lab("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", Some(98.0), Some(107.0), 102.0, 3.0, 0),
    lab("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", Some(22.0), Some(29.0), 25.0, 2.0, 0),
    lab("22664-7", "Urea [Moles/volume] in Serum or Plasma", "mmol/L", Some(2.5), Some(7.1), 5.2, 1.6, 1),
    lab(
        "33914-3",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)",
        "mL/min/{1.73_m2}",
        Some(60.0),
        None,
        82.0,
        20.0,
        0,
    ),
    // Complete blood count: 8..14
    lab("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", Some(120.0), Some(160.0), 138.0, 15.0, 0),
    lab("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*9/L", Some(4.0), Some(11.0), 7.0, 2.0, 1),
    lab("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*12/L", Some(4.2), Some(5.9), 4.8, 0.5, 2),
    lab("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", Some(36.0), Some(50.0), 42.0, 4.0, 1),
    lab("777-3", "Platelets [#/volume] in Blood by Automated count", "10*9/L", Some(150.0), Some(400.0), 250.0, 60.0, 0),
    lab("787-2", "MCV [Entitic volume] by Automated count", "fL", Some(80.0), Some(100.0), 90.0, 5.0, 0),
    // Lipid panel: 14..18
    lab("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L", None, Some(5.2), 4.9, 1.0, 2),
    lab("14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma", "mmol/L", Some(1.0), None, 1.3, 0.35, 2),
    lab("22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma", "mmol/L", None, Some(3.4), 2.8, 0.9, 2),
    lab("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "mmol/L", None, Some(1.7), 1.5, 0.7, 2),
    // Single tests: 18..
    lab("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", Some(4.0), Some(6.0), 6.1, 1.1, 1),
    lab("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", Some(7.0), Some(56.0), 28.0, 12.0, 0),
    lab("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", Some(10.0), Some(40.0), 25.0, 10.0, 0),
    lab("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "U/L", Some(40.0), Some(129.0), 80.0, 25.0, 0),
    lab("14631-6", "Bilirubin.total [Moles/volume] in Serum or Plasma", "umol/L", Some(3.0), Some(21.0), 10.0, 5.0, 0),
    lab("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/L", Some(35.0), Some(50.0), 42.0, 4.0, 0),
    lab("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", Some(0.4), Some(4.0), 2.0, 1.0, 2),
    lab("5902-2", "Prothrombin time (PT)", "s", Some(11.0), Some(13.5), 12.2, 1.0, 1),
    lab("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", Some(0.8), Some(1.2), 1.1, 0.4, 1),
    lab("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", None, Some(5.0), 4.0, 6.0, 1),
    lab("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "ug/L", Some(30.0), Some(300.0), 120.0, 80.0, 0),
    lab("2000-8", "Calcium [Moles/volume] in Serum or Plasma", "mmol/L", Some(2.15), Some(2.55), 2.35, 0.12, 2),
    lab("2601-3", "Magnesium [Moles/volume] in Serum or Plasma", "mmol/L", Some(0.7), Some(1.0), 0.85, 0.1, 2),
    lab("14879-1", "Phosphate [Moles/volume] in Serum or Plasma", "mmol/L", Some(0.8), Some(1.5), 1.1, 0.2, 2),
];

pub const METABOLIC: (usize, usize) = (0, 8);
pub const CBC: (usize, usize) = (8, 14);
pub const LIPIDS: (usize, usize) = (14, 18);
pub const SINGLES: (usize, usize) = (18, LABS.len());

/// Panel LOINC code and display, for the DiagnosticReport over each panel.
pub const PANELS: &[(&str, &str)] = &[
    ("24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma"),
    ("58410-2", "CBC panel - Blood by Automated count"),
    ("57698-3", "Lipid panel with direct LDL - Serum or Plasma"),
];

/// Imaging studies: LOINC, display, conclusions a radiologist might write.
pub const IMAGING: &[(&str, &str)] = &[
    ("36643-5", "XR Chest 2 Views"),
    ("24627-2", "CT Chest"),
    ("24558-9", "US Abdomen"),
    ("24590-2", "MR Brain"),
    ("37362-3", "XR Knee 2 Views"),
    ("24604-1", "MG Breast Diagnostic Limited Views"),
];

pub const IMAGING_CONCLUSIONS: &[&str] = &[
    "Aucune anomalie significative.",
    "Légers changements dégénératifs, sans particularité aiguë.",
    "Opacité focale à corréler cliniquement; contrôle suggéré dans 3 mois.",
    "Examen comparable au précédent.",
];

/// Vital signs: LOINC, display, unit, mean, sd, decimals.
pub const VITALS: &[(&str, &str, &str, f64, f64, i32)] = &[
    ("8867-4", "Heart rate", "/min", 74.0, 11.0, 0),
    ("29463-7", "Body weight", "kg", 76.0, 16.0, 1),
    ("8310-5", "Body temperature", "Cel", 36.8, 0.3, 1),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 97.0, 1.5, 0),
    ("9279-1", "Respiratory rate", "/min", 15.0, 2.5, 0),
];

/// SNOMED CT conditions: code, display, yearly-ish chance weight (relative).
pub const CONDITIONS: &[(&str, &str)] = &[
    ("38341003", "Hypertensive disorder, systemic arterial (disorder)"),
    ("44054006", "Diabetes mellitus type 2 (disorder)"),
    ("55822004", "Hyperlipidemia (disorder)"),
    ("195967001", "Asthma (disorder)"),
    ("13645005", "Chronic obstructive lung disease (disorder)"),
    ("35489007", "Depressive disorder (disorder)"),
    ("197480006", "Anxiety disorder (disorder)"),
    ("444814009", "Viral sinusitis (disorder)"),
    ("10509002", "Acute bronchitis (disorder)"),
    ("239873007", "Osteoarthritis of knee (disorder)"),
    ("49436004", "Atrial fibrillation (disorder)"),
    ("53741008", "Coronary arteriosclerosis (disorder)"),
    ("40930008", "Hypothyroidism (disorder)"),
    ("709044004", "Chronic kidney disease (disorder)"),
    ("68566005", "Urinary tract infectious disease (disorder)"),
    ("271737000", "Anemia (disorder)"),
];

/// Conditions that resolve (the others stay active).
pub const ACUTE: &[&str] = &["444814009", "10509002", "68566005"];

/// RxNorm medications with a French dosage text.
pub const MEDICATIONS: &[(&str, &str, &str)] = &[
    ("860975", "metformin hydrochloride 500 MG Oral Tablet", "1 comprimé 2 fois par jour"),
    ("314076", "lisinopril 10 MG Oral Tablet", "1 comprimé par jour"),
    ("617312", "atorvastatin 10 MG Oral Tablet", "1 comprimé au coucher"),
    ("197361", "amlodipine 5 MG Oral Tablet", "1 comprimé par jour"),
    ("310798", "hydrochlorothiazide 25 MG Oral Tablet", "1 comprimé le matin"),
    ("312938", "sertraline 50 MG Oral Tablet", "1 comprimé par jour"),
    ("855332", "warfarin sodium 5 MG Oral Tablet", "selon INR"),
    ("313782", "acetaminophen 325 MG Oral Tablet", "2 comprimés aux 6 heures au besoin"),
    ("197806", "ibuprofen 600 MG Oral Tablet", "1 comprimé 3 fois par jour avec nourriture"),
    ("966222", "levothyroxine sodium 0.05 MG Oral Tablet", "1 comprimé à jeun"),
    ("745679", "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "2 inhalations au besoin"),
    ("308182", "amoxicillin 250 MG Oral Capsule", "1 capsule 3 fois par jour pendant 10 jours"),
];

/// Encounter types: SNOMED code, display, v3 ActCode class.
pub const ENCOUNTER_TYPES: &[(&str, &str, &str)] = &[
    ("185349003", "Encounter for check up (procedure)", "AMB"),
    ("185349003", "Encounter for check up (procedure)", "AMB"),
    ("390906007", "Follow-up encounter (procedure)", "AMB"),
    ("390906007", "Follow-up encounter (procedure)", "AMB"),
    ("185345009", "Encounter for symptom (procedure)", "AMB"),
    ("50849002", "Emergency room admission (procedure)", "EMER"),
];
