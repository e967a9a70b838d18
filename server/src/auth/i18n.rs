//! French (the default) and English texts of the pages and messages, chosen by
//! `Accept-Language`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Lang {
        if code.trim().to_ascii_lowercase().starts_with("en") {
            Lang::En
        } else {
            Lang::Fr
        }
    }

    /// The preferred of French and English in an `Accept-Language` header (highest
    /// q-value wins; French when neither is named).
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else { return Lang::Fr };
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
                .unwrap_or(1.0);
            let lang = if tag.starts_with("fr") {
                Lang::Fr
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::Fr)
    }

    pub fn from_headers(headers: &axum::http::HeaderMap) -> Lang {
        Lang::from_accept_language(
            headers
                .get(axum::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }
}

/// One text in the chosen language.
pub fn t(lang: Lang, key: &str) -> &'static str {
    let (fr, en) = match key {
        "title.signin" => ("Connexion", "Sign in"),
        "title.code" => ("Code de vérification", "Verification code"),
        "title.patient" => ("Choisir la personne", "Choose the person"),
        "title.activate" => ("Activer votre compte", "Activate your account"),
        "title.reset" => ("Réinitialiser le mot de passe", "Reset your password"),
        "title.deactivate" => ("Désactiver votre compte", "Deactivate your account"),
        "title.error" => ("Erreur", "Error"),
        "title.done" => ("C'est fait", "Done"),
        "field.username" => ("Nom d'utilisateur", "Username"),
        "field.password" => ("Mot de passe", "Password"),
        "field.new_password" => ("Nouveau mot de passe", "New password"),
        "field.code" => ("Code à 6 chiffres", "6-digit code"),
        "field.activation_code" => ("Code d'activation", "Activation code"),
        "button.continue" => ("Continuer", "Continue"),
        "button.resend" => ("Renvoyer un code", "Send a new code"),
        "button.activate" => ("Activer", "Activate"),
        "button.deactivate" => ("Désactiver mon compte", "Deactivate my account"),
        "button.send_code" => ("Envoyer un code", "Send a code"),
        "hint.code_sent" => (
            "Nous vous avons envoyé un code à 6 chiffres. Il est valide 10 minutes.",
            "We sent you a 6-digit code. It is valid for 10 minutes.",
        ),
        "hint.reset" => (
            "Entrez votre nom d'utilisateur : nous vous enverrons un code.",
            "Enter your username: we will send you a code.",
        ),
        "err.credentials" => (
            "Nom d'utilisateur ou mot de passe incorrect.",
            "Wrong username or password.",
        ),
        "err.code" => ("Code incorrect ou expiré.", "Wrong or expired code."),
        "err.locked" => (
            "Ce compte est verrouillé après trop d'essais. Communiquez avec votre équipe de soins.",
            "This account is locked after too many attempts. Contact your care team.",
        ),
        "err.age" => (
            "L'accès à son propre dossier est possible à partir de 14 ans.",
            "Access to one's own record starts at 14 years of age.",
        ),
        "err.no_patient" => (
            "Aucun dossier ne peut être consulté avec ce compte.",
            "No record can be accessed with this account.",
        ),
        "err.activation" => (
            "Code d'activation invalide ou expiré.",
            "Invalid or expired activation code.",
        ),
        "err.username_taken" => ("Ce nom d'utilisateur est déjà pris.", "This username is already taken."),
        "err.password_weak" => (
            "Le mot de passe doit compter au moins 10 caractères.",
            "The password must be at least 10 characters long.",
        ),
        "err.request" => (
            "Cette demande de connexion est invalide ou a expiré. Recommencez depuis l'application.",
            "This sign-in request is invalid or has expired. Start again from the app.",
        ),
        "err.client" => (
            "Application inconnue ou adresse de retour non enregistrée.",
            "Unknown application or unregistered redirect address.",
        ),
        "done.activated" => (
            "Votre compte est activé. Vous pouvez vous connecter.",
            "Your account is active. You can sign in.",
        ),
        "done.reset" => ("Votre mot de passe est changé.", "Your password has been changed."),
        "done.deactivated" => ("Votre compte est désactivé.", "Your account has been deactivated."),
        "done.code_sent" => (
            "Si ce compte existe, un code vous a été envoyé.",
            "If this account exists, a code has been sent to you.",
        ),
        "mail.signin.subject" => ("Votre code de connexion Carnet", "Your Carnet sign-in code"),
        "mail.signin.body" => (
            "Votre code de connexion est {code}. Il expire dans 10 minutes. Ne le communiquez à personne.",
            "Your sign-in code is {code}. It expires in 10 minutes. Do not share it with anyone.",
        ),
        "mail.activation.subject" => ("Activez votre compte Carnet", "Activate your Carnet account"),
        "mail.activation.body" => (
            "Votre code d'activation est {code}. Il est valide 7 jours et ne sert qu'une fois.",
            "Your activation code is {code}. It is valid for 7 days and works once.",
        ),
        "mail.reset.subject" => (
            "Réinitialisation de votre mot de passe Carnet",
            "Resetting your Carnet password",
        ),
        "mail.reset.body" => (
            "Votre code de réinitialisation est {code}. Il expire dans 10 minutes.",
            "Your reset code is {code}. It expires in 10 minutes.",
        ),
        _ => ("", ""),
    };
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}
